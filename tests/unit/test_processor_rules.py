"""The processor's rules with fakes: when a job goes back to the queue, and how an unanswered call is settled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from backdrop.claid.client import Deadline
from backdrop.claid.errors import ClaidAuthError, ClaidCallNotStarted, ClaidOutOfCredits, ClaidRateLimited
from backdrop.config import ProcessorConfig
from backdrop.events import ClaidCall, Credits, GenerationDetail, Problem, SourceObject
from backdrop.handback import HandBack
from backdrop.jobs import Job, plan_job, refusal_id
from backdrop.once import InProgressElsewhere, RunsEveryTime
from backdrop.processing import Processor, Refused
from backdrop.settings import Settings
from backdrop.store.reservations import Reservation
from backdrop.uploads import Upload

CONFIG = ProcessorConfig(
    event_bus_name="bus",
    app_table_name="app",
    idempotency_table_name="idem",
    claid_api_key_secret_arn="arn:secret",
    claid_storage_name="shop",
    claid_call_budget_seconds=60,
    unknown_outcome_settle_seconds=300,
)
CALLED_AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class FakeS3:
    def __init__(self, keys: list[str] | None = None) -> None:
        self.keys = keys or []

    def get_paginator(self, name: str) -> FakeS3:
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket: str, Prefix: str, Delimiter: str = "") -> list[dict[str, Any]]:
        under = [k for k in self.keys if k.startswith(Prefix)]
        # With a delimiter, only the files directly in the folder (a subfolder is a common prefix).
        direct = [k for k in under if not Delimiter or Delimiter not in k.removeprefix(Prefix)]
        return [{"Contents": [{"Key": k} for k in direct]}]

    def generate_presigned_url(self, *_: Any, **__: Any) -> str:
        return "https://bucket.s3.amazonaws.com/incoming/cup.png?X-Amz-Signature=abc"


class FakeLedger:
    budget = Decimal(0)

    def __init__(self) -> None:
        self.held: dict[str, Decimal] = {}

    def reserve(self, job_id: str, month: str, credits: Decimal) -> Reservation:
        self.held[job_id] = credits
        return Reservation("reserved", credits, month, credits)

    def release(self, job_id: str, month: str, credits: Decimal) -> bool:
        return self.held.pop(job_id, None) is not None

    def release_held(self, job_id: str) -> Decimal:
        return self.held.pop(job_id, Decimal(0))

    def claim_alert(self, *_: Any) -> bool:
        return True


class FakeClaid:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def create_scene(self, request: Any, deadline: Deadline) -> Any:
        raise self.error


def processor(
    s3: FakeS3 | None = None, claid: Any = None, ledger: FakeLedger | None = None, step: Any = None
) -> Processor:
    """The processor with fakes; `step` stands in for the guarded Claid step (else the real one, unguarded)."""
    return Processor(
        config=CONFIG,
        s3=s3 or FakeS3(),
        events=None,
        reservations=ledger or FakeLedger(),  # type: ignore[arg-type]
        load_profile=lambda _: None,
        claid=lambda: claid,
        guard=lambda generate: RunsEveryTime(step or generate),
    )


def job(images: int = 2) -> Job:
    settings = Settings(prompt="on a marble table", number_of_images=images)
    return plan_job(
        Upload("shop-bucket", "incoming/cup.png"),
        version_id="v1",
        etag=None,
        profile=None,
        settings=settings,
        generated_prefix="generated/",
    )


def unanswered(j: Job, *, destination: str | None = "storage://shop/generated/x/") -> GenerationDetail:
    return GenerationDetail(
        status="failed",
        job_id=j.job_id,
        source=SourceObject(bucket=j.bucket, key=j.key, version_id=j.version_id),
        credits=Credits(month=j.month, reserved=4.0),
        claid=ClaidCall(attempts=1, destination=destination),
        problem=Problem(code="claid_outcome_unknown", message="Claid did not answer (ReadTimeout)"),
        occurred_at=CALLED_AT.isoformat(),
    )


def deadline(seconds: float) -> Deadline:
    return Deadline(lambda: seconds, reserve_seconds=0)


# --- hand-backs ------------------------------------------------------------------------------------------
def test_no_call_is_tried_when_the_time_left_does_not_cover_the_budget():
    tried: list[Job] = []
    outcome = processor(step=lambda j, _: tried.append(j))._run(job(), deadline(59))
    assert isinstance(outcome, HandBack) and outcome.reason == "claid_call_not_started"
    assert outcome.seconds is not None and outcome.seconds <= 5  # visible again soon, not after the queue's timeout
    assert tried == []


@pytest.mark.parametrize(
    ("error", "reason", "seconds"),
    [
        (ClaidRateLimited("slow down", status=429, retry_after=7.0), "claid_rate_limited", 7.0),
        (ClaidCallNotStarted("late start", retry_after=12.5), "claid_call_not_started", 12.5),
        (InProgressElsewhere("j"), "in_progress_elsewhere", 60.0),
        (ClaidOutOfCredits("No API calls left", status=402), "claid_out_of_credits", None),
    ],
)
def test_trouble_that_may_pass_hands_the_job_back(error, reason, seconds):
    def step(_: Job, __: Deadline) -> GenerationDetail:
        raise error

    outcome = processor(step=step)._run(job(), deadline(600))
    assert isinstance(outcome, HandBack) and (outcome.reason, outcome.seconds) == (reason, seconds)


def test_a_call_that_could_not_start_gives_its_credits_back():
    ledger = FakeLedger()
    p = processor(claid=FakeClaid(ClaidCallNotStarted("late", retry_after=3.0)), ledger=ledger)
    with pytest.raises(ClaidCallNotStarted):
        p.generate(job(), deadline(600))
    assert ledger.held == {}


def test_an_unanswered_call_keeps_its_credits_held():
    from backdrop.claid.errors import ClaidOutcomeUnknown

    ledger = FakeLedger()
    j = job()
    detail = processor(claid=FakeClaid(ClaidOutcomeUnknown("no answer")), ledger=ledger).generate(j, deadline(600))
    assert detail.problem is not None and detail.problem.code == "claid_outcome_unknown"
    assert ledger.held == {j.job_id: Decimal(4)}  # Claid may have charged: settled later, not released now


# --- settling an unanswered call -------------------------------------------------------------------------
def test_temporary_bucket_mode_counts_the_credits_at_risk():
    j = job()
    settled = processor().settle(j, unanswered(j, destination=None), now=CALLED_AT)
    assert isinstance(settled, GenerationDetail)
    assert settled.status == "failed" and settled.credits.at_risk == 4.0 and settled.credits.used == 0


def test_images_in_the_output_folder_settle_it_as_succeeded_with_their_credits():
    j = job(images=2)
    # Renditions live in a subfolder of the job's folder: only the files directly in it are its variants.
    rendition = f"{j.output_prefix}renditions/1-2048x2048-crop.jpeg"
    s3 = FakeS3(
        [f"{j.output_prefix}variant-1.jpeg", f"{j.output_prefix}variant-2.jpeg", rendition, "generated/other/x.jpeg"]
    )
    settled = processor(s3).settle(j, unanswered(j), now=CALLED_AT + timedelta(seconds=1))
    assert isinstance(settled, GenerationDetail)
    assert settled.status == "succeeded" and settled.problem is None
    assert settled.claid is not None and settled.claid.reconciled
    assert [o.key for o in settled.outputs] == [f"{j.output_prefix}variant-{i}.jpeg" for i in (1, 2)]
    assert (settled.images, settled.credits.used, settled.credits.reserved) == (2, 4.0, 4.0)


def test_an_empty_folder_waits_until_claid_could_no_longer_write():
    j = job()
    early = processor().settle(j, unanswered(j), now=CALLED_AT + timedelta(seconds=100))
    assert isinstance(early, HandBack) and early.reason == "claid_outcome_unsettled"
    assert early.seconds == pytest.approx(200)


def test_a_partial_folder_waits_then_counts_what_is_there():
    j = job(images=2)
    s3 = FakeS3([f"{j.output_prefix}variant-1.jpeg"])
    assert isinstance(processor(s3).settle(j, unanswered(j), now=CALLED_AT + timedelta(seconds=10)), HandBack)
    late = processor(s3).settle(j, unanswered(j), now=CALLED_AT + timedelta(seconds=301))
    assert isinstance(late, GenerationDetail) and late.status == "succeeded"
    assert (late.images, late.credits.used) == (1, 2.0)


def test_nothing_written_after_the_wait_is_a_failure_that_charged_nothing():
    j = job()
    settled = processor().settle(j, unanswered(j), now=CALLED_AT + timedelta(seconds=301))
    assert isinstance(settled, GenerationDetail) and settled.status == "failed"
    assert settled.problem is not None and "no image appeared" in settled.problem.message
    assert settled.credits.used == 0 and settled.credits.at_risk == 0


def test_answered_outcomes_pass_through_untouched():
    j = job()
    rejected = unanswered(j).model_copy(update={"problem": Problem(code="claid_rejected", message="422")})
    assert processor().settle(j, rejected) is rejected


def test_keys_are_checked_against_s3s_limit_in_bytes_before_anything_is_spent():
    from backdrop.processing import check_key_lengths
    from backdrop.uploads import UploadRejected

    # published/ + path + "/4-5000x4999.jpeg" (the longest rendition): 10 + len + 17 bytes. A path of 997 bytes
    # gives exactly 1,024.
    fits = "incoming/" + "a" * (997 - 4) + ".png"
    check_key_lengths(Upload("b", fits), CONFIG)
    one_over = "incoming/" + "a" * (998 - 4) + ".png"
    with pytest.raises(UploadRejected) as refused:
        check_key_lengths(Upload("b", one_over), CONFIG)
    assert refused.value.reason == "key_too_long" and "1,025 bytes" in refused.value.message
    # Bytes, not characters: "é" is two.
    with pytest.raises(UploadRejected):
        check_key_lengths(Upload("b", "incoming/" + "é" * 502 + ".png"), CONFIG)
    # A long generated prefix is what fails then (the variants' keys).
    deep = CONFIG.model_copy(update={"generated_prefix": "g" * 900 + "/"})
    with pytest.raises(UploadRejected, match="its variants would"):
        check_key_lengths(Upload("b", "incoming/cup.png"), deep)


# --- a refusal that a change of settings or budget can lift is not a verdict ---------------------------------
class SpentLedger(FakeLedger):
    """A budget with nothing left; a backfill held credits for the job before it was sent."""

    budget = Decimal(10)

    def __init__(self) -> None:
        super().__init__()
        self.held["queued-by-backfill"] = Decimal(4)
        self.released: list[str] = []

    def reserve(self, job_id: str, month: str, credits: Decimal) -> Reservation:
        return Reservation("over_budget", credits, month)

    def release_held(self, job_id: str) -> Decimal:
        self.released.append(job_id)
        return super().release_held(job_id)


class FakeEvents:
    def __init__(self) -> None:
        self.put: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.put.extend(Entries)
        return {"FailedEntryCount": 0}


def test_a_budget_refusal_leaves_the_job_free_and_gives_back_what_a_backfill_held():
    ledger, events, j = SpentLedger(), FakeEvents(), job()
    spent = processor(ledger=ledger)
    spent.events = events  # the budget_exhausted alert
    with pytest.raises(Refused) as refused:
        spent.generate(j, deadline(600))  # raised, so the idempotency layer keeps nothing
    detail = refused.value.detail
    assert (detail.status, detail.problem.code, detail.final) == ("rejected", "budget_exhausted", False)
    assert detail.job_id == refusal_id(j.bucket, j.key, "v1", "budget_exhausted") != j.job_id
    assert detail.settings is not None and detail.source.version_id == "v1"
    assert ledger.released == [j.job_id]
    assert [e["DetailType"] for e in events.put] == ["Budget Alert"]


def test_a_request_that_cannot_be_built_is_a_failed_refusal_and_holds_nothing():
    ledger = FakeLedger()
    misconfigured = Processor(
        config=CONFIG.model_copy(update={"claid_storage_prefix": "incoming/"}),
        s3=FakeS3(),
        events=None,
        reservations=ledger,  # type: ignore[arg-type]
        load_profile=lambda _: None,
        claid=lambda: None,
        guard=RunsEveryTime,
    )
    with pytest.raises(Refused) as refused:
        misconfigured.generate(job(), deadline(600))
    detail = refused.value.detail
    assert (detail.status, detail.problem.code, detail.final) == ("failed", "bad_configuration", False)
    assert "generated/cup/" in detail.problem.message and "CLAID_STORAGE_PREFIX" in detail.problem.message
    assert ledger.held == {}


def test_a_refused_api_key_gives_its_credits_back_and_is_no_verdict():
    ledger = FakeLedger()
    error = ClaidAuthError("The API key is not valid.", status=401, error_code="111", request_id="req-1")
    with pytest.raises(Refused) as refused:
        processor(claid=FakeClaid(error), ledger=ledger).generate(job(), deadline(600))
    detail = refused.value.detail
    assert (detail.status, detail.problem.code, detail.final) == ("failed", "claid_auth", False)
    assert detail.problem.claid_request_id == "req-1" and ledger.held == {}


def test_a_refusal_is_published_as_the_outcome_of_that_delivery():
    j = job()
    refusal = Refused(unanswered(j).model_copy(update={"job_id": "r" * 32}))

    def step(_: Job, __: Deadline) -> GenerationDetail:
        raise refusal

    assert processor(step=step)._run(j, deadline(600)) is refusal.detail


def test_a_refusal_kept_as_the_outcome_before_this_release_is_forgotten_and_the_job_runs():
    j = job()
    kept = GenerationDetail(
        status="rejected",
        job_id=j.job_id,
        source=SourceObject(bucket=j.bucket, key=j.key, version_id="v1"),
        credits=Credits(month=j.month),
        problem=Problem(code="budget_exhausted", message="spent"),
    )
    done = kept.model_copy(update={"status": "succeeded", "problem": None, "final": True, "images": 2})
    answers = [kept, done]
    p = processor(step=lambda _, __: answers.pop(0))
    assert kept.final is False  # said by its code, as a detail stored without the field is read
    assert p._run(j, deadline(600)) is done
    assert p.generate_once.forgotten == [j]  # type: ignore[attr-defined]
    # A verdict kept by the idempotency layer is the outcome: never run again.
    p = processor(step=lambda _, __: done)
    assert p._run(j, deadline(600)) is done and p.generate_once.forgotten == []  # type: ignore[attr-defined]


def test_a_version_refused_before_it_became_a_job_gives_back_what_a_backfill_held():
    ledger = SpentLedger()
    p = processor(ledger=ledger)
    p._release_backfill_hold(Upload("shop-bucket", "incoming/cup.png", version_id="v1"))
    p._release_backfill_hold(Upload("shop-bucket", "incoming/cup.png"))  # no version named: nothing to find
    assert ledger.released == [job().job_id]
