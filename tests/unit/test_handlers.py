"""Each handler on its own, Powertools-style: the sample events of events/, a fake Lambda context, and fakes for
what the handler calls (its logic object, the SQS client of a hand-back). What is checked here is the handler's
own job: parse, route, call the library, shape the response (partial batch failures, hand-back holds, errors that
send an event to its DLQ). The local-stack tier keeps the end-to-end cases."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote_plus

import pytest
from backdrop.events import GenerationDetail
from backdrop.handback import HandBack
from backdrop.recording import RecordOutcome
from backdrop.uploads import Upload, UploadRejected
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
ENVIRONMENT = {
    "EVENT_BUS_NAME": "backdrop-test",
    "APP_TABLE_NAME": "backdrop-test-app",
    "IDEMPOTENCY_TABLE_NAME": "backdrop-test-idempotency",
    "CLAID_API_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:claid",
    "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:backdrop-test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "POWERTOOLS_SERVICE_NAME": "backdrop",
    "POWERTOOLS_METRICS_NAMESPACE": "Backdrop",
    "POWERTOOLS_METRICS_DISABLED": "true",
}


@dataclass
class FakeContext:
    function_name: str = "backdrop-test-Function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:backdrop-test-Function"
    aws_request_id: str = "c0ffee00-0000-0000-0000-000000000001"
    seconds_left: float = 120.0

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds_left * 1000)


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())  # type: ignore[no-any-return]


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch):
    """Imports a function's handler module afresh, with a test environment (its cold start makes no AWS call)."""

    def load(function: str) -> ModuleType:
        for name, value in ENVIRONMENT.items():
            monkeypatch.setenv(name, value)
        path = ROOT / "functions" / function / "handler.py"
        spec = importlib.util.spec_from_file_location(f"handler_under_test_{function}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, module)
        spec.loader.exec_module(module)
        return module

    return load


class Recorded:
    def __init__(self) -> None:
        self.started: list[Any] = []

    def start_invocation(self, context: Any) -> None:
        self.started.append(context)


@dataclass
class FakeSQS:
    holds: list[dict[str, Any]] = field(default_factory=list)

    def change_message_visibility(self, **params: Any) -> None:
        self.holds.append(params)


@dataclass
class FakeClients:
    sqs: FakeSQS = field(default_factory=FakeSQS)


class FakeProcessor:
    """Answers each upload by its key: a HandBack, an UploadRejected to raise, or (default) a published outcome."""

    def __init__(self, answers: dict[str, Any] | None = None) -> None:
        self.answers = answers or {}
        self.handled: list[Upload] = []
        self.generate_once = Recorded()

    def handle(self, upload: Upload, deadline: Any) -> Any:
        self.handled.append(upload)
        answer = self.answers.get(upload.key)
        if isinstance(answer, Exception):
            raise answer
        if answer is not None:
            return answer
        return GenerationDetail.model_validate(event("eventbridge-generation-succeeded.json")["detail"])


@pytest.fixture
def processor(load):
    def make(answers: dict[str, Any] | None = None) -> tuple[ModuleType, FakeProcessor, FakeClients]:
        module = load("processor")
        fake, clients = FakeProcessor(answers), FakeClients()
        module.processor, module.clients = fake, clients
        return module, fake, clients

    return make


# --- ProcessorFunction ---------------------------------------------------------------------------------------
def test_processor_hands_an_upload_to_the_logic_with_its_key_decoded_and_reports_no_failure(processor):
    module, fake, _ = processor()
    context = FakeContext()
    assert module.lambda_handler(event("sqs-s3-special-key.json"), context) == {"batchItemFailures": []}
    [upload] = fake.handled
    assert upload.key == "incoming/Summer Sale (2026)+ Café ☕.png"
    assert fake.generate_once.started == [context]  # the idempotency lock expires with this invocation


def test_processor_ignores_an_s3_test_event(processor):
    module, fake, _ = processor()
    assert module.lambda_handler(event("sqs-s3-test-event.json"), FakeContext()) == {"batchItemFailures": []}
    assert fake.handled == []


def test_processor_reports_a_malformed_message_as_a_failure_so_it_reaches_the_dlq(processor):
    module, fake, _ = processor()
    message = event("sqs-malformed.json")
    response = module.lambda_handler(message, FakeContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": message["Records"][0]["messageId"]}]}
    assert fake.handled == []


def test_processor_treats_a_key_the_logic_refuses_as_done(processor):
    outside = UploadRejected("outside_incoming_prefix", "not work")
    module, fake, _ = processor({"generated/espresso-cup/variant-1.jpeg": outside})
    assert module.lambda_handler(event("sqs-s3-outside-prefix.json"), FakeContext()) == {"batchItemFailures": []}
    assert len(fake.handled) == 1


def test_processor_hands_a_job_back_with_the_hold_the_logic_asked_for(processor):
    message = event("sqs-s3-put.json")
    module, _, clients = processor({"incoming/espresso-cup.png": HandBack(7.2, "claid_rate_limited", "slow", "j1")})
    response = module.lambda_handler(message, FakeContext())
    record = message["Records"][0]
    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert clients.sqs.holds == [
        {
            "QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/backdrop-prod-JobsQueue",
            "ReceiptHandle": record["receiptHandle"],
            "VisibilityTimeout": 8,  # whole seconds, never shorter than asked
        }
    ]


def test_processor_leaves_the_queues_own_timeout_when_no_hold_is_named(processor):
    module, _, clients = processor({"incoming/espresso-cup.png": HandBack(None, "claid_out_of_credits", "none")})
    assert len(module.lambda_handler(event("sqs-s3-put.json"), FakeContext())["batchItemFailures"]) == 1
    assert clients.sqs.holds == []


def test_processor_reports_only_the_failed_records_of_a_batch(processor):
    batch = event("sqs-s3-batch.json")
    keys = [unquote_plus(json.loads(r["body"])["Records"][0]["s3"]["object"]["key"]) for r in batch["Records"]]
    module, fake, _ = processor({keys[1]: RuntimeError("boom")})
    response = module.lambda_handler(batch, FakeContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": batch["Records"][1]["messageId"]}]}
    assert len(fake.handled) == 3


# --- RecorderFunction ----------------------------------------------------------------------------------------
class FakeRecorder:
    def __init__(self) -> None:
        self.recorded: list[GenerationDetail] = []
        self.alerts: list[Any] = []

    def record(self, detail: GenerationDetail) -> RecordOutcome:
        self.recorded.append(detail)
        return RecordOutcome(detail.job_id, detail.status, True, True, detail.outputs)

    def alert(self, detail: Any) -> None:
        self.alerts.append(detail)


@pytest.mark.parametrize("name", ["eventbridge-generation-succeeded.json", "eventbridge-generation-rejected.json"])
def test_recorder_records_each_generation_event(load, name):
    module = load("recorder")
    module.recorder = fake = FakeRecorder()
    sample = event(name)
    answer = module.lambda_handler(sample, FakeContext())
    [detail] = fake.recorded
    assert (answer["job_id"], answer["status"], answer["recorded"]) == (detail.job_id, sample["detail"]["status"], True)


def test_recorder_refuses_events_that_are_not_backdrops_so_eventbridge_retries_then_dead_letters(load):
    module = load("recorder")
    module.recorder = fake = FakeRecorder()
    foreign = {**event("eventbridge-generation-succeeded.json"), "source": "storefront"}
    with pytest.raises(module.UnexpectedEvent):
        module.lambda_handler(foreign, FakeContext())
    unknown = {**event("eventbridge-generation-succeeded.json"), "detail-type": "Something Else"}
    with pytest.raises(module.UnexpectedEvent):
        module.lambda_handler(unknown, FakeContext())
    broken = {**event("eventbridge-generation-succeeded.json"), "detail": {"status": "succeeded"}}
    with pytest.raises(ValidationError):
        module.lambda_handler(broken, FakeContext())
    assert fake.recorded == []


# --- PublisherFunction ---------------------------------------------------------------------------------------
class FakePublisher:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def apply_policy(self, detail: Any) -> None:
        self.calls.append(("policy", detail))

    def command(self, source: str, detail: Any) -> None:
        self.calls.append((source, detail))


def test_publisher_routes_a_storefront_command_and_a_recorded_generation(load):
    module = load("publisher")
    module.publisher = fake = FakePublisher()
    command = event("eventbridge-select-variants.json")
    assert module.lambda_handler(command, FakeContext()) == {"published": False}
    recorded = {**event("eventbridge-generation-succeeded.json"), "detail-type": "Generation Recorded"}
    assert module.lambda_handler(recorded, FakeContext()) == {"published": False}
    assert [c[0] for c in fake.calls] == [command["source"], "policy"]


def test_publisher_refuses_what_is_not_for_it(load):
    module = load("publisher")
    module.publisher = fake = FakePublisher()
    with pytest.raises(module.UnexpectedEvent):
        module.lambda_handler(event("eventbridge-generation-succeeded.json"), FakeContext())
    # A storefront cannot pass its command off as backdrop's own event.
    forged = {**event("eventbridge-select-variants.json"), "source": "backdrop"}
    with pytest.raises(module.UnexpectedEvent):
        module.lambda_handler(forged, FakeContext())
    assert fake.calls == []


# --- RenditionsFunction --------------------------------------------------------------------------------------
@dataclass
class FakeWork:
    detail: Any


class FakeEditor:
    def __init__(self, plan: Any = None, made: dict[str, Any] | None = None) -> None:
        self._plan, self.made = plan, made or {}
        self.published_ready: list[Any] = []
        self.attempt_once = Recorded()

    def plan(self, detail: Any) -> Any:
        if isinstance(self._plan, Exception):
            raise self._plan
        return self._plan

    def make_all(self, work: Any, deadline: Any, workers: Any) -> dict[str, Any]:
        return self.made

    def publish_ready(self, work: Any) -> None:
        self.published_ready.append(work)

    def finish(self, work: Any, outcomes: Any) -> None:
        return None


def renditions(load, editor: FakeEditor) -> tuple[ModuleType, FakeClients]:
    module = load("renditions")
    module.editor, module.clients = editor, FakeClients()
    return module, module.clients


def test_renditions_with_nothing_to_make_succeed(load):
    module, _ = renditions(load, FakeEditor(plan=None))
    assert module.lambda_handler(event("sqs-variants-published.json"), FakeContext()) == {"batchItemFailures": []}


def test_renditions_report_a_message_that_is_not_a_published_selection(load):
    module, _ = renditions(load, FakeEditor(plan=ValueError("not a Variants Published event")))
    message = event("sqs-variants-published.json")
    response = module.lambda_handler(message, FakeContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": message["Records"][0]["messageId"]}]}


def test_renditions_publish_what_is_made_and_hand_back_the_rest_for_the_longest_hold(load):
    waiting = {
        "e1": HandBack(3.0, "claid_rate_limited", "slow down"),
        "e2": HandBack(11.5, "claid_call_not_started", "late"),
    }
    work = FakeWork(detail=type("Detail", (), {"job_id": "j1"})())
    editor = FakeEditor(plan=work, made=waiting)
    module, clients = renditions(load, editor)
    message = event("sqs-variants-published.json")
    assert len(module.lambda_handler(message, FakeContext())["batchItemFailures"]) == 1
    assert editor.published_ready == [work]
    assert [h["VisibilityTimeout"] for h in clients.sqs.holds] == [12]


# --- what Lambda has --------------------------------------------------------------------------------------------
LAMBDA_RUNTIME = {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
IMPORT_EVERY_HANDLER = """
import importlib.util, json, os, sys
from importlib.metadata import packages_distributions
os.environ.update(json.loads(sys.argv[1]))
before = set(sys.modules)
for name in ("processor", "recorder", "publisher", "renditions"):
    spec = importlib.util.spec_from_file_location("handler_" + name, f"functions/{name}/handler.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
owners = packages_distributions()
loaded = {m.split(".")[0] for m in set(sys.modules) - before}
print(json.dumps(sorted({d for m in loaded for d in owners.get(m, [])})))
"""


def test_the_handlers_import_only_what_the_layer_ships_and_lambda_provides():
    """Every third-party distribution a handler's import loads is in layers/backdrop/requirements.txt or in
    Lambda's Python runtime: a typing-only package (boto3-stubs) imported at run time fails every cold start."""
    import re
    import subprocess

    shipped = {
        re.split(r"[\[<>=;\s]", line.strip())[0].lower()
        for line in (ROOT / "layers" / "backdrop" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_HANDLER, json.dumps(ENVIRONMENT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = {name.lower().replace("_", "-") for name in json.loads(done.stdout)} - {"backdrop"}
    dependencies_of_shipped = {"pydantic-core", "typing-extensions", "annotated-types", "typing-inspection"}
    dependencies_of_shipped |= {"anyio", "certifi", "httpcore", "h11", "idna", "sniffio", "python-dotenv"}
    # httpx's command line, which httpx imports only if they are installed (they are here, for other tools).
    optional = {"click", "pygments", "rich", "markdown-it-py", "mdurl"}
    assert loaded - shipped - LAMBDA_RUNTIME - dependencies_of_shipped - optional == set()


def test_renditions_wait_for_the_queues_own_timeout_when_one_edit_names_no_hold(load):
    waiting = {"e1": HandBack(3.0, "claid_rate_limited", "slow down"), "e2": HandBack(None, "claid_out_of_credits", "")}
    editor = FakeEditor(plan=FakeWork(detail=type("Detail", (), {"job_id": "j1"})()), made=waiting)
    module, clients = renditions(load, editor)
    assert len(module.lambda_handler(event("sqs-variants-published.json"), FakeContext())["batchItemFailures"]) == 1
    assert clients.sqs.holds == []
