"""The renditions function's logic with fakes: which edits a published selection needs, each one reserved and
made once (or found made), a lost answer settled from its file, a budget or a refused key that is no verdict, and
what the bus is told."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from backdrop.claid.client import Deadline
from backdrop.claid.edit_models import EditResponse
from backdrop.claid.errors import ClaidAuthError, ClaidOutcomeUnknown, ClaidRejected, ClaidUnavailable
from backdrop.config import RenditionsConfig
from backdrop.editing import (
    RENDITIONS_FAILED,
    RENDITIONS_PUBLISHED,
    Edit,
    Editor,
    EditOutcome,
    EditRefused,
)
from backdrop.handback import HandBack
from backdrop.once import RunsEveryTime
from backdrop.renditions import RenditionSpec, plan
from backdrop.store.ledger import EditCharge
from backdrop.store.reservations import Reservation
from backdrop.store.selections import SelectionRecord
from botocore.exceptions import ClientError

BUCKET = "shop"
VARIANT = "generated/cup/j1/variant-1.jpeg"
CONFIG = RenditionsConfig.from_env(
    {
        "EVENT_BUS_NAME": "bus",
        "APP_TABLE_NAME": "app",
        "IDEMPOTENCY_TABLE_NAME": "idem",
        "CLAID_API_KEY_SECRET_ARN": "arn:secret",
        "CLAID_STORAGE_NAME": "shop",
        "UNKNOWN_OUTCOME_SETTLE_SECONDS": "600",
    }
)


class FakeS3:
    def __init__(self, keys: set[str]) -> None:
        self.keys = set(keys)
        self.copies: list[tuple[str, str]] = []

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if Key not in self.keys:
            raise ClientError({"Error": {"Code": "404"}}, "HeadObject")
        return {}

    def copy_object(self, Bucket: str, Key: str, CopySource: dict[str, str], **_: Any) -> None:
        self.copies.append((CopySource["Key"], Key))
        self.keys.add(Key)

    def generate_presigned_url(self, _: str, Params: dict[str, str], ExpiresIn: int) -> str:
        return f"https://{Params['Bucket']}.s3.amazonaws.com/{Params['Key']}?X-Amz-Signature=abc"


class FakeLedger:
    def __init__(self, budget: Decimal = Decimal(0), committed: Decimal = Decimal(0)) -> None:
        self.budget = budget
        self.committed = committed
        self.held: dict[str, Decimal] = {}
        self.recorded: list[dict[str, Any]] = []
        self.alerts: set[tuple[str, str]] = set()

    def reserve(self, attempt_id: str, month: str, credits: Decimal) -> Reservation:
        if self.budget and self.committed + credits > self.budget:
            return Reservation("over_budget", credits, month)
        self.held[attempt_id] = credits
        self.committed += credits
        return Reservation("reserved", credits, month, self.committed, ())

    def release(self, attempt_id: str, month: str, credits: Decimal) -> bool:
        if self.held.pop(attempt_id, None) is None:
            return False
        self.committed -= credits
        return True

    def commit_edit(self, charge: EditCharge) -> bool:
        if any(r["attempt_id"] == charge.attempt_id for r in self.recorded):
            return False
        self.recorded.append(dataclasses.asdict(charge))
        self.held.pop(charge.attempt_id, None)
        return True

    def claim_alert(self, period: str, kind: str) -> bool:
        if (period, kind) in self.alerts:
            return False
        self.alerts.add((period, kind))
        return True


class FakeEvents:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.sent += [(e["DetailType"], json.loads(e["Detail"])) for e in Entries]
        return {"FailedEntryCount": 0}


class FakeClaid:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.requests: list[dict[str, Any]] = []

    def edit_image(self, request: Any, deadline: Deadline) -> Any:
        self.requests.append(request.body())
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class FakePublisher:
    def __init__(self, record: SelectionRecord | None) -> None:
        self.record = record
        self.converged = 0

    def current(self, bucket: str, key: str) -> SelectionRecord | None:
        return self.record

    def converge(self, bucket: str, key: str, *, images: bool = True) -> list[str]:
        assert not images  # the renditions function leaves the images to the choosers
        self.converged += 1
        return []


def made(width: int = 2048, key: str | None = "generated/cup/j1/renditions/1-2048x2048-crop.webp") -> Any:
    from backdrop.claid.client import EditResult

    output: dict[str, Any] = {"ext": "webp", "mime": "image/webp", "format": "WEBP", "width": width, "height": width}
    output.update({"object_key": key, "object_bucket": BUCKET} if key else {"tmp_url": "https://tmp.claid.ai/x.webp"})
    return EditResult(EditResponse.model_validate({"data": {"output": output}}), "req-1", 1)


def edit(**changes: Any) -> Edit:
    values: dict[str, Any] = {
        "edit_id": "e" * 32,
        "job_id": "j" * 32,
        "version": 1,
        "bucket": BUCKET,
        "photo_key": "incoming/cup.png",
        "profile": None,
        "month": "2026-12",
        "spec": "2048 webp",
        "width": 2048,
        "height": 2048,
        "format": "webp",
        "fit": "crop",
        "upscale": True,
        "credits": 2.0,
        "input_key": VARIANT,
        "output_key": "generated/cup/j1/renditions/1-2048x2048-crop.webp",
    }
    return Edit.model_validate({**values, **changes})


def editor(
    answer: Any = None,
    keys: set[str] | None = None,
    ledger: FakeLedger | None = None,
    record: SelectionRecord | None = None,
    config: RenditionsConfig = CONFIG,
) -> tuple[Editor, FakeS3, FakeLedger, FakeClaid, FakeEvents]:
    s3, claid, events = FakeS3({VARIANT} if keys is None else keys), FakeClaid(answer or made()), FakeEvents()
    ledger = ledger or FakeLedger()
    built = Editor(
        config=config,
        s3=s3,
        events=events,
        reservations=ledger,  # type: ignore[arg-type]
        ledger=ledger,  # type: ignore[arg-type]
        publisher=FakePublisher(record),  # type: ignore[arg-type]
        claid=lambda: claid,  # type: ignore[arg-type,return-value]
        http=None,  # type: ignore[arg-type]
        guard=RunsEveryTime,
    )
    return built, s3, ledger, claid, events


LATER = Deadline(lambda: 500.0, reserve_seconds=0)


def run(e: Editor, one: Edit) -> EditOutcome | HandBack:
    """make() with the step unguarded (in Lambda, the idempotency layer guards it)."""
    return e.make(one, LATER)


def test_an_upscaled_edit_is_reserved_made_through_the_connector_and_counted_once():
    e, _, ledger, claid, _ = editor()
    outcome = run(e, edit())
    assert isinstance(outcome, EditOutcome) and outcome.status == "succeeded" and outcome.credits.used == 2.0
    [body] = claid.requests
    assert body["input"] == f"storage://shop/{VARIANT}"  # the variant Claid wrote, read through the connector
    assert body["output"]["destination"] == "storage://shop/generated/cup/j1/renditions/1-2048x2048-crop.webp"
    assert body["operations"]["restorations"] == {"upscale": "smart_resize"}
    [recorded] = ledger.recorded
    assert (recorded["used"], recorded["reserved"], recorded["succeeded"]) == (2.0, 2.0, True)
    assert ledger.held == {} and ledger.committed == 2
    e.attempt_once = RunsEveryTime(lambda _, __: outcome)  # redelivered: the idempotency layer gives the kept one
    again = e.make(edit(), LATER)
    assert again == outcome and len(ledger.recorded) == 1


def test_a_file_already_made_is_reused_without_a_reservation_or_a_call():
    e, _, ledger, claid, _ = editor(keys={VARIANT, edit().output_key})
    outcome = run(e, edit())
    assert isinstance(outcome, EditOutcome) and outcome.reused and outcome.credits.used == 0
    assert claid.requests == [] and ledger.recorded == [] and ledger.committed == 0


def test_a_variant_gone_from_the_bucket_is_a_failure_that_costs_nothing():
    e, _, ledger, claid, _ = editor(keys=set())
    outcome = run(e, edit())
    assert isinstance(outcome, EditOutcome) and outcome.problem is not None
    assert outcome.problem.code == "variant_missing" and claid.requests == [] and ledger.committed == 0


def test_a_budget_that_cannot_cover_it_refuses_it_once_alerted_and_keeps_no_verdict():
    e, _, ledger, claid, events = editor(ledger=FakeLedger(budget=Decimal(3), committed=Decimal(2)))
    with pytest.raises(EditRefused) as refused:
        e.attempt(edit(), LATER)  # raised out of the guarded step: the idempotency layer keeps nothing
    assert refused.value.outcome.problem is not None and refused.value.outcome.problem.code == "budget_exhausted"
    assert claid.requests == [] and ledger.held == {}
    outcome = run(e, edit())
    assert isinstance(outcome, EditOutcome) and outcome.status == "failed" and not outcome.recorded
    assert [kind for _, kind in ledger.alerts] == ["budget_exhausted"]
    assert [d["kind"] for t, d in events.sent] == ["budget_exhausted"]


def test_claid_refusing_the_key_gives_the_credits_back_and_keeps_no_verdict():
    e, _, ledger, _, _ = editor(ClaidAuthError("Not enough permissions.", status=403, error_code="403", request_id="r"))
    with pytest.raises(EditRefused) as refused:
        e.attempt(edit(), LATER)
    problem = refused.value.outcome.problem
    assert problem is not None and (problem.code, problem.claid_status, problem.claid_request_id) == (
        "claid_auth",
        403,
        "r",
    )
    assert ledger.held == {} and ledger.committed == 0


def test_claid_refusing_the_edit_is_a_recorded_failure_with_its_code_and_nothing_charged():
    rejected = ClaidRejected("Validation error", status=422, error_code="9000", request_id="r9", details={"x": [1]})
    e, _, ledger, _, _ = editor(rejected)
    outcome = run(e, edit())
    assert isinstance(outcome, EditOutcome) and outcome.problem is not None
    assert (outcome.problem.claid_error_code, outcome.problem.claid_request_id) == ("9000", "r9")
    [recorded] = ledger.recorded
    assert (recorded["succeeded"], recorded["used"], recorded["reserved"]) == (False, 0.0, 2.0)  # released


def test_transient_trouble_gives_the_credits_back_and_hands_the_message_back():
    e, _, ledger, _, _ = editor(ClaidUnavailable("busy", status=503, retry_after=4.0))
    handed = run(e, edit())
    assert isinstance(handed, HandBack) and handed.seconds == 4.0 and ledger.committed == 0


def unanswered(at: datetime, destination: bool = True) -> EditOutcome:
    """What the guarded step keeps for a call that got no answer."""
    return EditOutcome.model_validate(
        {
            "edit_id": "e" * 32,
            "attempt_id": "a1",
            "status": "failed",
            "output_key": edit().output_key,
            "format": "webp",
            "credits": {"month": "2026-12", "reserved": 2.0},
            "claid": {"destination": "storage://shop/x" if destination else None},
            "problem": {"code": ClaidOutcomeUnknown.reason, "message": "no answer"},
            "occurred_at": at.isoformat(),
        }
    )


def test_a_lost_answer_is_settled_from_the_file_claid_was_told_to_write():
    called = datetime(2026, 12, 1, tzinfo=UTC)
    e, s3, _, _, _ = editor()
    early = e.settle(edit(), unanswered(called), now=called + timedelta(seconds=100))
    assert isinstance(early, HandBack) and early.seconds == pytest.approx(500)
    late = e.settle(edit(), unanswered(called), now=called + timedelta(seconds=601))
    assert isinstance(late, EditOutcome) and late.status == "failed" and late.credits.used == 0
    assert late.claid is not None and late.claid.reconciled
    s3.keys.add(edit().output_key)  # Claid wrote it after all
    found = e.settle(edit(), unanswered(called), now=called + timedelta(seconds=1))
    assert isinstance(found, EditOutcome) and found.status == "succeeded" and found.credits.used == 2.0
    temporary = e.settle(edit(), unanswered(called, destination=False))
    assert isinstance(temporary, EditOutcome) and temporary.credits.at_risk == 2.0


def test_a_file_claid_wrote_under_another_name_is_moved_to_the_name_the_record_publishes():
    e, s3, _, _, _ = editor(made(key="generated/cup/j1/renditions/elsewhere.webp"))
    outcome = run(e, edit())
    assert isinstance(outcome, EditOutcome) and outcome.output_key.endswith("elsewhere.webp")
    assert s3.copies == [("generated/cup/j1/renditions/elsewhere.webp", edit().output_key)]


def test_without_a_connector_the_variant_goes_as_a_presigned_url_and_the_answer_is_a_tmp_url():
    temporary = CONFIG.model_copy(update={"claid_storage_name": ""})
    e, _, _, claid, _ = editor(made(key=None), config=temporary)
    e.attempt(edit(), LATER)
    [body] = claid.requests
    assert body["input"].startswith("https://shop.s3.amazonaws.com/") and "destination" not in body["output"]


def record_of(version: int, renditions: list[Any]) -> SelectionRecord:
    return SelectionRecord(
        bucket=BUCKET,
        source_key="incoming/cup.png",
        version=version,
        job_id="j" * 32,
        selection="{}",
        targets="[]",
        renditions=json.dumps([r.model_dump() for r in renditions]),
    )


def planned(spec: str, width: int, variant: int = 1, position: int = 1) -> Any:
    return plan(
        RenditionSpec.model_validate({"width": width, "height": width, "format": spec}),
        position=position,
        variant=variant,
        bucket=BUCKET,
        folder="published/cup.png/",
        variant_key=f"generated/cup/j1/variant-{variant}.jpeg",
        source_size=(1024, 1024),
    )


def published_detail(version: int) -> dict[str, Any]:
    return {
        "job_id": "j" * 32,
        "source": {"bucket": BUCKET, "key": "incoming/cup.png"},
        "version": version,
        "selection": {
            "version": version,
            "job_id": "j" * 32,
            "variants": [1],
            "chosen_by": "policy",
            "actor": "policy first",
            "chosen_at": "2026-12-01T00:00:00+00:00",
        },
        "published": [],
        "rendition_count": 2,
    }


def test_a_selection_replaced_meanwhile_makes_nothing_and_its_edits_are_priced_by_size():
    renditions = [planned("webp", 2048), planned("jpeg", 800)]
    e, *_ = editor(record=record_of(2, renditions))
    assert e.plan(published_detail(1)) is None  # version 2 is current: its own event brings its renditions
    work = e.plan(published_detail(2))
    assert work is not None
    assert sorted((x.spec, x.credits, x.upscale) for x in work.edits.values()) == [
        ("2048 webp", 2.0, True),
        ("800 jpeg", 1.0, False),
    ]


def test_the_bus_is_told_what_this_selection_paid_and_what_failed():
    renditions = [planned("webp", 2048), planned("jpeg", 800)]
    e, _, _, _, events = editor(record=record_of(2, renditions))
    work = e.plan(published_detail(2))
    assert work is not None
    big, small = sorted(work.edits.values(), key=lambda x: -x.width)
    base = {"output_key": "k", "format": "webp"}
    outcomes = {
        big.edit_id: EditOutcome.model_validate(
            {
                **base,
                "edit_id": big.edit_id,
                "status": "succeeded",
                "for_version": 1,
                "credits": {"month": "2026-12", "used": 2},
            }
        ),
        small.edit_id: EditOutcome.model_validate(
            {
                **base,
                "edit_id": small.edit_id,
                "status": "failed",
                "for_version": 2,
                "credits": {"month": "2026-12"},
                "problem": {"code": "claid_rejected", "message": "no", "claid_request_id": "r1"},
            }
        ),
    }
    detail = e.finish(work, outcomes)
    assert detail is not None and detail.detail_type == RENDITIONS_FAILED
    [(kind, sent)] = events.sent
    assert kind == RENDITIONS_FAILED and sent["version"] == 2
    assert [(r["spec"], r["credits"]) for r in sent["renditions"]] == [("2048 webp", 0.0)]  # made for version 1
    assert [(f["spec"], f["problem"]["claid_request_id"]) for f in sent["failed"]] == [("800 jpeg", "r1")]
    assert sent["credits"]["used"] == 0  # the failed edit charged nothing, the made one was paid by version 1
    everything = {k: o.model_copy(update={"status": "succeeded", "problem": None}) for k, o in outcomes.items()}
    assert e.finish(work, everything).detail_type == RENDITIONS_PUBLISHED  # type: ignore[union-attr]
