"""template.yaml: lint-clean, buildable for arm64, and declaring every handler, variable and guard the code needs."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from backdrop.claid.client import Deadline
from backdrop.config import ProcessorConfig, PublisherConfig, RecorderConfig, RenditionsConfig
from backdrop_kit.bytecode import compile_build, runtime_python
from backdrop_kit.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template()
DEPLOYED = TEMPLATE.transformed()  # what CloudFormation deploys: the SAM transform's output
CONFIGS = {
    "ProcessorFunction": ProcessorConfig,
    "RecorderFunction": RecorderConfig,
    "PublisherFunction": PublisherConfig,
    "RenditionsFunction": RenditionsConfig,
}
ELF_MACHINES = {183: "arm64", 62: "x86_64"}


def sam_command() -> str:
    found = shutil.which("sam") or (str(ROOT / ".venv-sam/bin/sam") if (ROOT / ".venv-sam/bin/sam").exists() else None)
    if found is None:
        pytest.fail("aws-sam-cli is not installed: run `make sam` (make test installs it into .venv-sam)")
    return found


def test_cfn_lint_is_clean():
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(ROOT / "template.yaml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint():
    result = subprocess.run(
        [sam_command(), "validate", "--lint", "--template", str(ROOT / "template.yaml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("function_id", sorted(TEMPLATE.functions()))
def test_handler_exists(function_id):
    spec = TEMPLATE.functions()[function_id]
    assert spec.module_file.is_file(), f"{function_id}: {spec.module_file} does not exist"
    tree = ast.parse(spec.module_file.read_text())
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert spec.function_name in names, f"{function_id}: no function {spec.function_name} in {spec.module_file}"


@pytest.mark.parametrize("function_id", sorted(CONFIGS))
def test_environment_matches_the_config_model(function_id):
    config = CONFIGS[function_id]
    declared = set(TEMPLATE.functions()[function_id].environment)
    missing = {name.upper() for name, field in config.model_fields.items() if field.is_required()} - declared
    assert not missing, f"{function_id} lacks required variables {missing}"
    stray = {v for v in declared - {name.upper() for name in config.model_fields} if not v.startswith("POWERTOOLS_")}
    assert not stray, f"{function_id} declares variables its code never reads: {stray}"


def test_every_function_has_a_config_model():
    assert set(TEMPLATE.functions()) == set(CONFIGS)


def test_layer_is_built_for_the_functions_architecture():
    [layer] = TEMPLATE.resources_of_type("AWS::Serverless::LayerVersion").values()
    build_arch = layer["Metadata"]["BuildArchitecture"]
    architecture = TEMPLATE.parameters()["Architecture"]
    # Metadata cannot follow a parameter, so the parameter may only offer what the layer is built for.
    assert architecture["AllowedValues"] == [build_arch] and architecture["Default"] == build_arch
    assert layer["Properties"]["CompatibleArchitectures"] == [build_arch]
    runtime = TEMPLATE.parameters()["Runtime"]
    assert set(runtime["AllowedValues"]) <= set(layer["Properties"]["CompatibleRuntimes"])
    assert layer["Metadata"]["BuildMethod"] == runtime["Default"]


def test_loop_guard_generated_prefix_is_outside_the_notification_filter():
    [bucket] = TEMPLATE.resources_of_type("AWS::S3::Bucket").values()
    [queue_config] = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    [rule] = queue_config["Filter"]["S3Key"]["Rules"]
    assert (rule["Name"], rule["Value"]) == ("prefix", {"Ref": "IncomingPrefix"})
    env = TEMPLATE.functions()["ProcessorFunction"].environment
    assert env["INCOMING_PREFIX"] == {"Ref": "IncomingPrefix"}
    assert env["GENERATED_PREFIX"] == {"Ref": "GeneratedPrefix"}
    assert TEMPLATE.functions()["RecorderFunction"].environment["GENERATED_PREFIX"] == {"Ref": "GeneratedPrefix"}
    # No stray literal: every use of the two folders goes through the parameters the Rules check.
    resources = yaml.safe_dump(TEMPLATE.raw["Resources"])
    assert "incoming/" not in resources and "generated/" not in resources and "published/" not in resources
    assert TEMPLATE.functions()["PublisherFunction"].environment["PUBLISHED_PREFIX"] == {"Ref": "PublishedPrefix"}


def _deploys(incoming: str, generated: str, **others: str) -> bool:
    """Whether CloudFormation takes these values: parameter constraints and the template's Rules, evaluated by
    the kit (`Template.parameter_problems`, which `backdrop local start` applies too)."""
    return not TEMPLATE.parameter_problems({"IncomingPrefix": incoming, "GeneratedPrefix": generated, **others})


PREFIXES = ["incoming/", "generated/", "in/", "incoming/generated/", "incoming", "", "/", "inc", "gen/x/", "a b/"]


@pytest.mark.parametrize("incoming", PREFIXES)
@pytest.mark.parametrize("generated", PREFIXES)
def test_template_refuses_overlapping_prefixes(incoming, generated):
    overlap = incoming.startswith(generated) or generated.startswith(incoming)
    if _deploys(incoming, generated):
        # Whatever the parameters and Rules let through is loop-free: output never matches the filter.
        assert not overlap
        assert incoming.endswith("/") and generated.endswith("/") and incoming.count("/") == 1


def test_template_accepts_the_defaults_and_other_distinct_folders():
    assert _deploys("incoming/", "generated/")
    assert _deploys("photos/", "variants/")
    assert _deploys("in/", "incoming/")  # "incoming/" does not start with "in/": the slash ends the folder
    assert not _deploys("photos/", "photos/")
    assert not _deploys("", "generated/")  # an empty filter would watch the whole bucket


@pytest.mark.parametrize("published", PREFIXES)
@pytest.mark.parametrize("incoming", ["incoming/", "photos/", "published/"])
def test_published_images_are_never_uploads_nor_unchosen_variants(incoming, published):
    """Loop guard for published/: outside the notification filter, and apart from what the lifecycle expires."""
    if _deploys(incoming, "generated/", PublishedPrefix=published):
        for other in (incoming, "generated/"):
            assert not (published.startswith(other) or other.startswith(published))
    assert not _deploys("incoming/", "generated/", PublishedPrefix="incoming/")
    assert not _deploys("incoming/", "generated/", PublishedPrefix="generated/")
    assert _deploys("incoming/", "generated/", PublishedPrefix="published/")


def test_every_rule_is_evaluated_and_holds_for_the_defaults():
    assert TEMPLATE.raw["Rules"] and TEMPLATE.parameter_problems({}) == []


@pytest.mark.parametrize(
    ("connector_path", "generated", "deploys"),
    [
        ("", "generated/", True),  # the whole bucket: the connector user's policy limits the reach
        ("generated/", "generated/", True),
        ("variants/", "variants/", True),
        ("incoming/", "generated/", False),  # issue 21: every job would fail, so the deploy does
        ("generated/", "variants/", False),
        ("generated/x/", "generated/", False),
        ("generated", "generated/", False),
    ],
)
def test_the_connector_path_must_cover_where_claid_writes(connector_path, generated, deploys):
    assert _deploys("incoming/", generated, ClaidStoragePrefix=connector_path) is deploys


def test_every_closed_set_is_checked_at_deploy():
    """A typo in a parameter with a closed set of values is refused by name, never deployed to drop events."""
    closed = {name: spec for name, spec in TEMPLATE.parameters().items() if "AllowedValues" in spec}
    assert "WebhookStatuses" in closed
    for name in closed:
        [problem] = TEMPLATE.parameter_problems({name: "typo"})
        assert problem.startswith(f"{name}='typo': 'typo' not allowed; choose from"), problem
    [problem] = TEMPLATE.parameter_problems({"WebhookStatuses": "success,failed"})
    assert "'success' not allowed" in problem and "'failed'" not in problem.split(";")[0]
    assert TEMPLATE.parameter_problems({"WebhookStatuses": "succeeded, failed,rejected"}) == []


@pytest.mark.parametrize(
    ("name", "value", "deploys"),
    [
        ("ClaidStorageName", "backdrop-shop_1.2", True),
        ("ClaidStorageName", "bad name/!", False),
        ("ClaidStorageName", "x" * 51, False),
        ("ClaidDownloadHosts", "*.claid.ai, 127.0.0.1", True),
        ("ClaidDownloadHosts", "https://files.claid.ai", False),
        ("NotificationEmail", "ops@shop.example", True),
        ("NotificationEmail", "ops at shop", False),
        ("MonthlyCreditBudget", "-1", False),
        ("Unknown", "x", False),
    ],
)
def test_parameters_are_checked_by_their_constraints(name, value, deploys):
    assert (TEMPLATE.parameter_problems({name: value}) == []) is deploys


def test_commands_cannot_pose_as_backdrop():
    assert not _deploys("incoming/", "generated/", StorefrontEventSource="backdrop")
    assert _deploys("incoming/", "generated/", StorefrontEventSource="shop.example")


def test_the_storefront_may_send_select_variants_and_nothing_else():
    policy = TEMPLATE.raw["Resources"]["StorefrontCommandPolicy"]["Properties"]["PolicyDocument"]
    [statement] = policy["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "events:PutEvents"
    assert statement["Resource"] == {"Fn::GetAtt": ["EventBus", "Arn"]}
    assert statement["Condition"] == {
        "StringEquals": {"events:source": {"Ref": "StorefrontEventSource"}, "events:detail-type": "Select Variants"}
    }
    [rule] = [
        r["Properties"]["EventPattern"]
        for r in DEPLOYED.resources_of_type("AWS::Events::Rule").values()
        if r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["PublisherFunction", "Arn"]}
        and "Select Variants" in r["Properties"]["EventPattern"]["detail-type"]
    ]
    assert rule == {"source": [{"Ref": "StorefrontEventSource"}], "detail-type": ["Select Variants"]}


def test_unchosen_variants_expire_by_lifecycle_only_when_asked():
    [bucket] = TEMPLATE.resources_of_type("AWS::S3::Bucket").values()
    condition, configured, absent = bucket["Properties"]["LifecycleConfiguration"]["Fn::If"]
    assert absent == {"Ref": "AWS::NoValue"}
    assert TEMPLATE.raw["Conditions"][condition] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "UnchosenVariantsExpireDays"}, 0]}]
    }
    assert TEMPLATE.parameter_defaults()["UnchosenVariantsExpireDays"] in (0, "0")
    [rule] = configured["Rules"]
    assert rule["Prefix"] == {"Ref": "GeneratedPrefix"}  # never published/ nor the uploads
    assert rule["ExpirationInDays"] == {"Ref": "UnchosenVariantsExpireDays"}


# What the processor's timeout must hold besides the call itself (see Mappings CallBudget in template.yaml).
WAIT_FOR_A_START = 30  # seconds a record may wait for a start under Claid's rate limit
PLAN_THE_BATCH = 5  # reading the batch's uploads and profiles before any call


def _processor_event() -> dict:
    """The processor's event source mapping, as the SAM transform made it."""
    [mapping] = [
        m["Properties"]
        for m in DEPLOYED.resources_of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": "ProcessorFunction"}
    ]
    return mapping


def test_processor_timeout_and_queue_visibility_are_sized_from_the_call_budget():
    budget_choices = TEMPLATE.parameters()["ClaidCallBudgetSeconds"]["AllowedValues"]
    rows = TEMPLATE.raw["Mappings"]["CallBudget"]
    assert sorted(rows, key=int) == sorted(budget_choices, key=int)
    kept_back = Deadline.from_lambda_context(None).reserve_seconds  # to record the outcome after the call
    for budget, row in rows.items():
        needed = int(budget) + WAIT_FOR_A_START + kept_back + PLAN_THE_BATCH
        assert row["FunctionTimeout"] >= needed, f"budget {budget}s: timeout {row['FunctionTimeout']} < {needed}"
        assert row["FunctionTimeout"] <= 900  # Lambda's maximum
        assert row["QueueVisibility"] >= 6 * row["FunctionTimeout"]  # AWS's advice for SQS event sources
    processor = DEPLOYED.raw["Resources"]["ProcessorFunction"]["Properties"]
    queue = TEMPLATE.resources_of_type("AWS::SQS::Queue")["JobsQueue"]["Properties"]
    mapped = {"Fn::FindInMap": ["CallBudget", {"Ref": "ClaidCallBudgetSeconds"}, "FunctionTimeout"]}
    assert processor["Timeout"] == mapped
    mapped = {"Fn::FindInMap": ["CallBudget", {"Ref": "ClaidCallBudgetSeconds"}, "QueueVisibility"]}
    assert queue["VisibilityTimeout"] == mapped
    env = TEMPLATE.functions()["ProcessorFunction"].environment
    assert env["CLAID_CALL_BUDGET_SECONDS"] == {"Ref": "ClaidCallBudgetSeconds"}
    # Every default budget resolves: the function the local runner loads has the mapped timeout.
    default = TEMPLATE.parameters()["ClaidCallBudgetSeconds"]["Default"]
    assert TEMPLATE.functions()["ProcessorFunction"].timeout == rows[default]["FunctionTimeout"]


def test_each_upload_is_an_invocation_of_its_own():
    """No head-of-line blocking: a record never waits for a batch's slowest (decisions 44)."""
    mapping = _processor_event()
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["JobsQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 1
    assert "MaximumBatchingWindowInSeconds" not in mapping  # a message never waits for company


def test_enough_calls_in_flight_to_fill_claids_rate_limit_by_default():
    """Little's law: filling 120/minute at a 20 s call takes 2/s x 20 s = 40 calls in flight."""
    params = TEMPLATE.parameters()
    per_second = int(params["ClaidRequestsPerMinute"]["Default"]) / 60
    capacity = int(params["ProcessorMaxConcurrency"]["Default"]) * _processor_event()["BatchSize"]
    assert capacity >= per_second * 20
    # ... while the shared schedule keeps the whole stack under both of Claid's limits.
    env = TEMPLATE.functions()["ProcessorFunction"].environment
    assert env["CLAID_REQUESTS_PER_SECOND"] == {"Ref": "ClaidRequestsPerSecond"}
    assert env["CLAID_REQUESTS_PER_MINUTE"] == {"Ref": "ClaidRequestsPerMinute"}
    assert (params["ClaidRequestsPerSecond"]["Default"], params["ClaidRequestsPerMinute"]["Default"]) == (4, 120)


def test_jobs_queue_outlives_idempotency_and_dead_letters():
    queue = TEMPLATE.resources_of_type("AWS::SQS::Queue")["JobsQueue"]["Properties"]
    # Hand-backs (no time for a call, a late rate-limit start, an unanswered call settling) count as receives.
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 10
    assert ProcessorConfig.model_fields["idempotency_ttl_seconds"].default > queue["MessageRetentionPeriod"]


def _runs(command: list[str], env: dict[str, str] | None = None) -> bool:
    try:
        return subprocess.run(command, capture_output=True, env=env).returncode == 0
    except OSError:
        return False


def _runtime_pyenv_version() -> str | None:
    """None when the runtime's interpreter (e.g. python3.13) already runs from PATH; a PYENV_VERSION that makes it
    run; LookupError if neither."""
    python = runtime_python()
    if _runs([python, "--version"]):
        return None
    pyenv = shutil.which("pyenv")
    if pyenv:
        versions = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True).stdout.split()
        match = [v for v in versions if v.startswith(python.removeprefix("python") + ".")]
        if match:
            current = subprocess.run([pyenv, "version-name"], capture_output=True, text=True).stdout.strip()
            version = f"{current.split(':')[0]}:{match[-1]}"
            if _runs([python, "--version"], {**os.environ, "PYENV_VERSION": version}):
                return version
    raise LookupError


@pytest.mark.slow
def test_the_build_makes_an_arm64_layer_with_bytecode(tmp_path, monkeypatch):
    """`sam build` and then `backdrop_kit.bytecode`, as `make build` runs them."""
    python = runtime_python()
    try:
        pyenv_version = _runtime_pyenv_version()
    except LookupError:
        pytest.skip(f"{python} not found: install it (e.g. `pyenv install 3.13`) to build the {python} runtime")
    monkeypatch.setenv("SAM_CLI_TELEMETRY", "0")
    if pyenv_version:
        monkeypatch.setenv("PYENV_VERSION", pyenv_version)
    build_dir = tmp_path / "build"
    result = subprocess.run(
        [
            sam_command(),
            "build",
            "--build-dir",
            str(build_dir),
            "--template",
            str(ROOT / "template.yaml"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    layer = build_dir / "BackdropLayer" / "python"
    assert (layer / "backdrop" / "config.py").is_file()
    [extension] = list((layer / "pydantic_core").glob("_pydantic_core*.so"))
    header = extension.read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    machine = int.from_bytes(header[18:20], "little")
    assert ELF_MACHINES.get(machine) == TEMPLATE.parameters()["Architecture"]["Default"], (
        f"pydantic-core built for {ELF_MACHINES.get(machine, machine)}"
    )
    for function_id, spec in TEMPLATE.functions().items():
        assert (build_dir / function_id / spec.module_file.name).is_file()

    compile_build(build_dir)
    # The runtime's own cache tag and magic number; the .pyc files are read, never imported.
    facts = "import importlib.util, sys; print(sys.implementation.cache_tag, importlib.util.MAGIC_NUMBER.hex())"
    tag, magic = subprocess.run([python, "-c", facts], capture_output=True, text=True, check=True).stdout.split()
    sources = sorted(build_dir.rglob("*.py"))
    assert {layer / "backdrop" / "config.py", layer / "pydantic" / "main.py"} <= set(sources)
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        assert pyc.is_file(), f"no {tag} bytecode for {source.relative_to(build_dir)}"
        header = pyc.read_bytes()[:8]  # PEP 552: magic number, then a little-endian flags word
        assert header[:4].hex() == magic, f"{pyc.relative_to(build_dir)} is not {python} bytecode"
        flags = int.from_bytes(header[4:8], "little")
        assert flags == 0b01, f"{pyc.relative_to(build_dir)}: flags {flags:#b}, not unchecked-hash (0b1)"


# --- transport ---------------------------------------------------------------------------------------
RESOURCE_POLICIES = {
    # policy type: (the property naming what it covers, the service prefix of its actions)
    "AWS::S3::BucketPolicy": ("Bucket", "s3"),
    "AWS::SQS::QueuePolicy": ("Queues", "sqs"),
    "AWS::SNS::TopicPolicy": ("Topics", "sns"),
}


def _refs(value: object) -> set[str]:
    """Logical ids a policy's target property names (Ref or a list of Refs)."""
    items = value if isinstance(value, list) else [value]
    return {item["Ref"] for item in items if isinstance(item, dict) and "Ref" in item}


def _denies_plain_http(statement: dict, service: str) -> bool:
    return (
        statement.get("Effect") == "Deny"
        and statement.get("Principal") == "*"
        and statement.get("Action") == f"{service}:*"
        and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    )


@pytest.mark.parametrize("policy_type", sorted(RESOURCE_POLICIES))
def test_every_resource_policy_refuses_plain_http(policy_type):
    _, service = RESOURCE_POLICIES[policy_type]
    policies = TEMPLATE.resources_of_type(policy_type)
    assert policies, f"no {policy_type} in template.yaml"
    for logical_id, policy in policies.items():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        denials = [s for s in statements if _denies_plain_http(s, service)]
        assert denials, f"{logical_id} does not deny aws:SecureTransport false"
        if service == "s3":
            # The bucket itself (ListBucket, policy calls) and every object in it.
            [resources] = [d["Resource"] for d in denials]
            assert {"Fn::GetAtt": ["UploadsBucket", "Arn"]} in resources
            assert {"Fn::Sub": "${UploadsBucket.Arn}/*"} in resources


def test_the_bucket_and_every_queue_or_topic_admitting_a_service_has_such_a_policy():
    covered: dict[str, set[str]] = {t: set() for t in RESOURCE_POLICIES}
    for policy_type, (target, _) in RESOURCE_POLICIES.items():
        for policy in TEMPLATE.resources_of_type(policy_type).values():
            covered[policy_type] |= _refs(policy["Properties"][target])
    assert set(TEMPLATE.resources_of_type("AWS::S3::Bucket")) <= covered["AWS::S3::BucketPolicy"]
    assert set(TEMPLATE.resources_of_type("AWS::SNS::Topic")) <= covered["AWS::SNS::TopicPolicy"]
    for policy in TEMPLATE.resources_of_type("AWS::SQS::QueuePolicy").values():
        admits_a_service = any(
            s.get("Effect") == "Allow" and "Service" in s.get("Principal", {})
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
        )
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert admits_a_service and any(_denies_plain_http(s, "sqs") for s in statements)


def _statements(node: object) -> list[dict]:
    """Every IAM statement anywhere in the template (resource policies and function policies)."""
    found: list[dict] = []
    if isinstance(node, dict):
        if "Effect" in node and "Action" in node:
            found.append(node)
        for value in node.values():
            found += _statements(value)
    elif isinstance(node, list):
        for value in node:
            found += _statements(value)
    return found


def test_no_allow_statement_has_a_wildcard_action():
    # A Deny may name every action (the transport rule above); an Allow never does.
    for statement in _statements(TEMPLATE.raw["Resources"]):
        if statement["Effect"] != "Allow":
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any("*" in str(action) for action in actions), statement


# --- alarms and the dashboard ------------------------------------------------------------------------
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()
ALARMS = TEMPLATE.resources_of_type("AWS::CloudWatch::Alarm")


def _runbook_section(name: str) -> str:
    match = re.search(rf"^### {re.escape(name)}\n(.*?)(?=^##)", OPERATIONS, re.S | re.M)
    return match.group(1) if match else ""


def test_the_issue_s_alarms_exist():
    assert set(ALARMS) == {
        "JobsDLQAlarm",
        "RecorderDLQAlarm",
        "PublisherDLQAlarm",
        "RenditionsDLQAlarm",
        "RenditionsQueueAgeAlarm",
        "ProcessorErrorsAlarm",
        "RecorderErrorsAlarm",
        "JobsQueueAgeAlarm",
        "ClaidAuthAlarm",
        "ClaidOutOfCreditsAlarm",
        "ClaidOutcomeUnknownAlarm",
        "ClaidRateLimitedAlarm",
        "Budget80Alarm",
        "Budget100Alarm",
        "WebhookDLQAlarm",  # only with a webhook (WebhookUrl)
    }


def _queue_of(arn: object) -> str:
    """The logical id of the queue a dead-letter ARN names ({"Fn::GetAtt": [queue, "Arn"]})."""
    assert isinstance(arn, dict) and list(arn) == ["Fn::GetAtt"] and arn["Fn::GetAtt"][1] == "Arn", arn
    return str(arn["Fn::GetAtt"][0])


def _dead_letter_queues(resources: dict) -> dict[str, str]:
    """Every dead-letter queue of the deployed stack, with what sends to it: SQS redrive, a rule target's
    dead-letter config, an invoke config's or an event source mapping's on-failure destination."""
    found: dict[str, str] = {}
    for logical_id, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in props:
            found[_queue_of(props["RedrivePolicy"]["deadLetterTargetArn"])] = f"{logical_id} redrive"
        if res["Type"] == "AWS::Events::Rule":
            for target in props.get("Targets", []):
                if "DeadLetterConfig" in target:
                    found[_queue_of(target["DeadLetterConfig"]["Arn"])] = f"{logical_id} target {target['Id']}"
        if res["Type"] in ("AWS::Lambda::EventInvokeConfig", "AWS::Lambda::EventSourceMapping"):
            failure = props.get("DestinationConfig", {}).get("OnFailure", {})
            if "Destination" in failure:
                found[_queue_of(failure["Destination"])] = f"{logical_id} on failure"
    return found


def _watched_queues(resources: dict) -> dict[str, set[str]]:
    """Per queue, the alarms on its depth or age (the QueueName dimension is that queue's name)."""
    watched: dict[str, set[str]] = {}
    for alarm_id, alarm in resources.items():
        if alarm["Type"] != "AWS::CloudWatch::Alarm" or alarm["Properties"].get("Namespace") != "AWS/SQS":
            continue
        for dimension in alarm["Properties"]["Dimensions"]:
            value = dimension["Value"]
            if dimension["Name"] == "QueueName" and isinstance(value, dict) and "Fn::GetAtt" in value:
                assert value["Fn::GetAtt"][1] == "QueueName"
                watched.setdefault(value["Fn::GetAtt"][0], set()).add(alarm_id)
    return watched


def test_every_dead_letter_of_the_deployed_stack_is_watched():
    """On what the SAM transform deploys, not on template.yaml: SAM may add queues of its own (it did: three
    rule dead-letter queues from `Type: SQS`, which nothing watched)."""
    resources = DEPLOYED.raw["Resources"]
    dead_letters = _dead_letter_queues(resources)
    assert {"JobsDLQ", "RecorderDLQ", "PublisherDLQ", "RenditionsDLQ", "WebhookDLQ"} <= set(dead_letters)
    watched = _watched_queues(resources)
    for queue, sender in dead_letters.items():
        depth_alarms = {
            a
            for a in watched.get(queue, set())
            if resources[a]["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        }
        assert depth_alarms, f"dead-letter queue {queue} (from {sender}) has no alarm on its depth"
        for alarm_id in depth_alarms:
            assert resources[alarm_id].get("Condition") == resources[queue].get("Condition"), alarm_id
            assert _runbook_section(alarm_id), f"{alarm_id} has no runbook in docs/operations.md"
    # Every queue the deployed stack has is one template.yaml declares and something watches.
    queues = {k for k, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    assert queues <= set(TEMPLATE.resources_of_type("AWS::SQS::Queue")), "the SAM transform added queues"
    assert not queues - set(watched), f"queues nothing watches: {queues - set(watched)}"


def test_functions_dead_letter_into_the_watched_queues():
    resources = DEPLOYED.raw["Resources"]
    dead_letters = _dead_letter_queues(resources)
    for function_id, queue in (("RecorderFunction", "RecorderDLQ"), ("PublisherFunction", "PublisherDLQ")):
        rules = [
            r
            for r in resources.values()
            if r["Type"] == "AWS::Events::Rule"
            and r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
        ]
        assert rules
        for rule in rules:
            [target] = rule["Properties"]["Targets"]
            assert _queue_of(target["DeadLetterConfig"]["Arn"]) == queue  # events it could not deliver
        [config] = [
            r["Properties"]
            for r in resources.values()
            if r["Type"] == "AWS::Lambda::EventInvokeConfig" and r["Properties"]["FunctionName"] == {"Ref": function_id}
        ]
        assert _queue_of(config["DestinationConfig"]["OnFailure"]["Destination"]) == queue  # invocations that failed
        assert "on failure" in dead_letters[queue] or "target" in dead_letters[queue]


@pytest.mark.parametrize("alarm_id", sorted(ALARMS))
def test_every_alarm_notifies_the_topic_and_has_a_runbook_section(alarm_id):
    props = ALARMS[alarm_id]["Properties"]
    assert props["AlarmActions"] == [{"Ref": "NotificationTopic"}]
    assert props["TreatMissingData"] == "notBreaching"  # no traffic is not trouble
    assert f'"{alarm_id}"' in props["AlarmDescription"]  # the description names its runbook section
    section = _runbook_section(alarm_id)
    for part in ("**Means**", "**Look at**", "**Do**"):
        assert part in section, f"docs/operations.md: section ### {alarm_id} lacks {part}"


def test_the_topic_key_admits_cloudwatch_alarms():
    topic = TEMPLATE.resources_of_type("AWS::SNS::Topic")["NotificationTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "NotificationKey"}  # not alias/aws/sns: alarms could not publish
    key = TEMPLATE.resources_of_type("AWS::KMS::Key")["NotificationKey"]["Properties"]
    services = [s["Principal"].get("Service") for s in key["KeyPolicy"]["Statement"]]
    assert "cloudwatch.amazonaws.com" in services


def _code_metric_names() -> set[str]:
    """Backdrop metric names the code emits: every measure the layer records (the one metrics path)."""
    layer = "\n".join(p.read_text() for p in (ROOT / "layers" / "backdrop" / "backdrop").rglob("*.py"))
    names = set(re.findall(r'\bmeasure\(\s*"([A-Za-z0-9]+)"', layer))
    if 'measure(f"Jobs{detail.status.title()}")' in layer:
        names |= {"JobsSucceeded", "JobsFailed", "JobsRejected"}
    return names


def _backdrop_metrics(node: object) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("Namespace") == "Backdrop" and "MetricName" in node:
            found.append(node["MetricName"])
        for value in node.values():
            found += _backdrop_metrics(value)
    elif isinstance(node, list):
        if len(node) >= 2 and node[0] == "Backdrop":  # a dashboard metric row
            found.append(node[1])
        for value in node:
            found += _backdrop_metrics(value)
    return found


def _dashboard() -> dict:
    [dashboard] = TEMPLATE.resources_of_type("AWS::CloudWatch::Dashboard").values()
    body, names = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    values = {**TEMPLATE.parameter_defaults(), "AWS::Region": "eu-west-1", **{n: f"q-{n}" for n in names}}
    return json.loads(re.sub(r"\$\{([^}]+)\}", lambda m: str(values[m.group(1)]), body))


def test_alarms_and_dashboard_watch_metrics_the_code_emits():
    emitted = _code_metric_names()
    assert {"ClaidLatency", "ClaidCalls", "UploadsRejected", "CreditsReserved", "JobsSucceeded"} <= emitted
    watched = _backdrop_metrics(TEMPLATE.raw["Resources"]) + _backdrop_metrics(_dashboard())
    assert watched and set(watched) <= emitted, f"not emitted by any code: {set(watched) - emitted}"


def test_the_dashboard_shows_the_pipeline_at_a_glance():
    titles = " | ".join(w["properties"]["title"] for w in _dashboard()["widgets"]).lower()
    for subject in ("uploads in", "jobs recorded by status", "claid latency", "claid errors", "queues", "credits"):
        assert subject in titles


def test_tracing_is_set_only_where_the_code_traces():
    """`Tracing: Active` without a Tracer in the code pays for X-Ray and shows nothing but the Lambda frame."""
    code = "\n".join(
        p.read_text()
        for root in (ROOT / "functions", ROOT / "layers" / "backdrop" / "backdrop")
        for p in root.rglob("*.py")
    )
    traces = "Tracer(" in code
    settings = [TEMPLATE.raw["Globals"]["Function"].get("Tracing")]
    settings += [
        f["Properties"].get("Tracing") for f in TEMPLATE.resources_of_type("AWS::Serverless::Function").values()
    ]
    assert ("Active" in settings) == traces, f"Tracing {settings} but the code {'does' if traces else 'does not'} trace"
