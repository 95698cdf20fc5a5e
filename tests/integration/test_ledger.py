"""The ledger against DynamoDB (moto server over HTTP): reservations are exactly-once and bounded by the
budget under concurrency; recording is exactly-once and keeps the ledger equal to the sum of the jobs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from backdrop.events import Credits, GenerationDetail, Problem, SourceObject
from backdrop.jobs import refusal_id
from backdrop.store.items import as_attributes
from backdrop.store.jobs import DynamoJobs
from backdrop.store.ledger import DynamoLedger
from backdrop.store.reservations import DynamoReservations
from backdrop_kit.moto_server import MotoServer

from tests.tables import create_app_table

MONTH = "2026-11"


class Store:
    """The three stores these tests write through, over one table."""

    def __init__(self, dynamodb: Any, table: str, *, monthly_budget: float = 0) -> None:
        self.reservations = DynamoReservations(dynamodb, table, monthly_budget=monthly_budget)
        self.jobs = DynamoJobs(dynamodb, table)
        self.ledger = DynamoLedger(dynamodb, table)


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[object]:
    server = MotoServer()
    url = server.start()
    client = boto3.client(
        "dynamodb", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    yield client
    server.stop()


@pytest.fixture
def table(dynamodb, request) -> str:
    name = f"app-{request.node.name[:40]}".replace("[", "-").replace("]", "")
    return create_app_table(dynamodb, name)


def detail(job_id: str, images: int, reserved: float, status: str = "succeeded") -> GenerationDetail:
    return GenerationDetail(
        status=status,
        job_id=job_id,
        source=SourceObject(bucket="b", key=f"incoming/{job_id}.png"),
        images=images,
        credits=Credits(month=MONTH, reserved=reserved, used=2.0 * images),
    )


def test_reservation_is_once_per_job(dynamodb, table):
    store = Store(dynamodb, table, monthly_budget=100)
    assert store.reservations.reserve("j1", MONTH, Decimal(8)).outcome == "reserved"
    assert store.reservations.reserve("j1", MONTH, Decimal(8)).outcome == "already_reserved"
    assert store.ledger.month_usage(MONTH)["total"]["committed"] == Decimal(8)


def test_concurrent_reservations_never_exceed_the_budget(dynamodb, table):
    store = Store(dynamodb, table, monthly_budget=50)
    outcomes: list[str] = []
    lock = threading.Lock()

    def reserve(i: int) -> None:
        result = Store(dynamodb, table, monthly_budget=50).reservations.reserve(f"job-{i}", MONTH, Decimal(8))
        with lock:
            outcomes.append(result.outcome)

    threads = [threading.Thread(target=reserve, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("reserved") == 6  # 6 x 8 = 48 <= 50 < 56
    assert outcomes.count("over_budget") == 18
    assert store.ledger.month_usage(MONTH)["total"]["committed"] == Decimal(48)


def test_crossing_thresholds_is_reported_once(dynamodb, table):
    store = Store(dynamodb, table, monthly_budget=10)
    assert store.reservations.reserve("a", MONTH, Decimal(6)).crossed == ()
    assert store.reservations.reserve("b", MONTH, Decimal(2)).crossed == (80,)
    assert store.reservations.reserve("c", MONTH, Decimal(2)).crossed == (100,)
    assert store.reservations.reserve("d", MONTH, Decimal(2)).outcome == "over_budget"


def test_record_settles_the_reservation_and_is_exactly_once(dynamodb, table):
    store = Store(dynamodb, table, monthly_budget=100)
    store.reservations.reserve("j1", MONTH, Decimal(8))
    assert store.jobs.put_outcome(detail("j1", images=3, reserved=8)) is True
    assert store.jobs.put_outcome(detail("j1", images=3, reserved=8)) is False  # redelivery
    total = store.ledger.month_usage(MONTH)["total"]
    assert total["credits_used"] == Decimal(6)
    assert total["credits_reserved"] == 0 and total["committed"] == Decimal(6)
    assert total["jobs_succeeded"] == 1 and total["images"] == 3
    assert store.jobs.get("j1").credits == Decimal(6)


def test_release_gives_back_once(dynamodb, table):
    store = Store(dynamodb, table, monthly_budget=10)
    store.reservations.reserve("j1", MONTH, Decimal(8))
    assert store.reservations.release("j1", MONTH, Decimal(8)) is True
    assert store.reservations.release("j1", MONTH, Decimal(8)) is False
    assert store.ledger.month_usage(MONTH)["total"]["committed"] == 0
    assert store.reservations.reserve("j2", MONTH, Decimal(8)).outcome == "reserved"


def test_ledger_equals_sum_of_jobs(dynamodb, table):
    store = Store(dynamodb, table)
    for i, images in enumerate([4, 0, 2, 1]):
        status = "succeeded" if images else "failed"
        store.reservations.reserve(f"j{i}", MONTH, Decimal(8))
        store.jobs.put_outcome(detail(f"j{i}", images=images, reserved=8, status=status))
    total = store.ledger.month_usage(MONTH)["total"]
    assert total["credits_used"] == Decimal(14) == sum(store.jobs.get(f"j{i}").credits for i in range(4))
    assert total["jobs_failed"] == 1 and total["jobs_succeeded"] == 3


def test_the_days_add_up_to_the_month_and_its_profiles(dynamodb, table):
    store = Store(dynamodb, table)
    for i, (images, profile) in enumerate([(4, "summer"), (1, None), (2, "summer"), (0, None)]):
        job = detail(f"j{i}", images=images, reserved=0, status="succeeded" if images else "failed")
        store.jobs.put_outcome(job.model_copy(update={"profile": profile}))
        store.jobs.put_outcome(job.model_copy(update={"profile": profile}))  # a redelivery counts nowhere
    usage = store.ledger.month_usage(MONTH)
    [day] = usage["days"].values()  # recorded today
    assert {p: c["credits_used"] for p, c in day.items()} == {"summer": 12, "-": 2}
    assert sum(c["credits_used"] for c in day.values()) == usage["total"]["credits_used"] == 14
    assert {p: c["credits_used"] for p, c in usage["profiles"].items()} == {"summer": 12, "-": 2}
    assert day["-"]["jobs_failed"] == 1


def test_an_alert_is_claimed_once_per_period(dynamodb, table):
    store = Store(dynamodb, table)
    assert store.reservations.claim_alert(MONTH, "budget_exhausted") is True
    assert store.reservations.claim_alert(MONTH, "budget_exhausted") is False
    assert store.reservations.claim_alert("2026-12", "budget_exhausted") is True


# --- a refusal is not a verdict; what a backfill queues is held ---------------------------------------------
def test_credits_a_backfill_holds_are_the_jobs_in_their_month_and_topped_up_under_the_budget(dynamodb, table):
    store = Store(dynamodb, table, monthly_budget=10)
    assert store.reservations.reserve("queued", "2026-10", Decimal(4), unless_recorded=True).outcome == "reserved"
    # The processor, a month later, with settings asking for 4 images: the job's credits stay in October's budget.
    held = store.reservations.reserve("queued", MONTH, Decimal(2))
    assert (held.outcome, held.credits, held.month) == ("already_reserved", Decimal(4), "2026-10")
    topped = store.reservations.reserve("queued", MONTH, Decimal(8))
    assert (topped.outcome, topped.credits, topped.month) == ("reserved", Decimal(8), "2026-10")
    assert store.ledger.month_usage("2026-10")["total"]["committed"] == Decimal(8)
    other = store.reservations.reserve("other", "2026-10", Decimal(2))
    assert other.outcome == "reserved"  # October's 10 are committed
    assert store.reservations.reserve("queued", MONTH, Decimal(10)).outcome == "over_budget"
    assert store.reservations.release_held("queued") == Decimal(8) and store.reservations.release_held("queued") == 0
    assert store.ledger.month_usage("2026-10")["total"]["committed"] == Decimal(2)


def test_a_backfill_holds_nothing_for_a_job_already_recorded(dynamodb, table):
    store = Store(dynamodb, table, monthly_budget=100)
    store.jobs.put_outcome(detail("done", images=1, reserved=0))
    assert store.reservations.reserve("done", MONTH, Decimal(8), unless_recorded=True).outcome == "already_recorded"
    assert store.ledger.month_usage(MONTH)["total"]["committed"] == Decimal(2)


def version_detail(job_id: str, status: str, code: str | None = None, **fields: object) -> GenerationDetail:
    problem = Problem(code=code, message=code) if code else None
    images = 2 if status == "succeeded" else 0
    return GenerationDetail(
        status=status,
        job_id=job_id,
        source=SourceObject(bucket="b", key="incoming/cup.png", version_id="v1", sequencer="0A"),
        images=images,
        credits=Credits(month=MONTH, used=2.0 * images),
        problem=problem,
        **fields,
    )


def test_a_refusal_gives_way_to_the_outcome_of_its_version_and_a_verdict_to_nothing(dynamodb, table):
    store = Store(dynamodb, table)
    refusal = version_detail("r1", "rejected", "budget_exhausted")
    assert refusal.final is False
    assert store.jobs.put_outcome(refusal) is True and store.jobs.latest_job_id("b", "incoming/cup.png") == "r1"
    assert store.jobs.put_outcome(version_detail("j1", "succeeded")) is True
    assert store.jobs.latest_job_id("b", "incoming/cup.png") == "j1"
    # A refusal of the same version delivered late never hides the outcome.
    assert store.jobs.put_outcome(version_detail("r2", "rejected", "unknown_profile")) is True
    assert store.jobs.latest_job_id("b", "incoming/cup.png") == "j1"
    assert (store.jobs.get("r1").final, store.jobs.get("j1").final) == (False, True)


def _as_recorded_before_refusals_had_ids(dynamodb, table: str, job_id: str) -> None:
    for pk, sk in ((f"JOB#{job_id}", "JOB"), ("SOURCE#b/incoming/cup.png", "LATEST")):
        dynamodb.update_item(
            TableName=table,
            Key=as_attributes({"pk": pk, "sk": sk}),
            UpdateExpression="REMOVE #final",
            ExpressionAttributeNames={"#final": "final"},
        )


@pytest.mark.parametrize("refused_again_meanwhile", [False, True])
def test_kept_refusal_moves_off_job_id(dynamodb, table, refused_again_meanwhile):
    """A budget refusal recorded under the job's id, as before refusals had ids of their own, moves out of the way
    of that job's outcome when the photo is sent again: the outcome is recorded and the counters stay true."""
    store = Store(dynamodb, table)
    legacy = version_detail("j1", "rejected", "budget_exhausted")
    assert store.jobs.put_outcome(legacy) is True
    _as_recorded_before_refusals_had_ids(dynamodb, table, "j1")
    moved_id = refusal_id("b", "incoming/cup.png", "v1", "budget_exhausted")
    if refused_again_meanwhile:  # sent again after the upgrade while the budget was still spent
        assert store.jobs.put_outcome(version_detail(moved_id, "rejected", "budget_exhausted")) is True
    assert store.jobs.put_outcome(legacy) is False  # the old refusal delivered again is still a redelivery
    assert store.jobs.put_outcome(version_detail("j1", "succeeded")) is True
    assert store.jobs.put_outcome(version_detail("j1", "succeeded")) is False
    assert store.jobs.get("j1").status == "succeeded" and store.jobs.latest_job_id("b", "incoming/cup.png") == "j1"
    kept = store.jobs.get(moved_id)
    assert (kept.status, kept.reason, kept.final) == ("rejected", "budget_exhausted", False)
    total = store.ledger.month_usage(MONTH)["total"]
    assert (total["jobs_rejected"], total["jobs_succeeded"], total["credits_used"]) == (1, 1, Decimal(4))
