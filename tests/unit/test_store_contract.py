"""One contract for each store, proven against both implementations: the in-memory fakes unit tests use
(backdrop.store.fakes) and the DynamoDB ones, on moto in-process. A fake that passes here honours the same
conditions as the table: a job reserves once, an outcome is recorded once, the latest-job pointer moves only to a
newer version, an alert is claimed once, a selection claims only the next version."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import boto3
import pytest
from backdrop.events import Credits, GenerationDetail, Problem, SourceObject
from backdrop.store.fakes import MemoryStore
from backdrop.store.jobs import DynamoJobs, Jobs
from backdrop.store.ledger import CreditLedger, DynamoLedger, EditCharge
from backdrop.store.reservations import DynamoReservations, Reservations
from backdrop.store.selections import DynamoSelections, SelectionRecord, Selections
from moto import mock_aws

from tests.tables import create_app_table

MONTH = "2026-11"
TABLE = "app"


@dataclass
class Stores:
    jobs: Jobs
    ledger: CreditLedger
    reservations: Reservations
    selections: Selections


def _dynamodb_stores(budget: int = 0) -> Stores:
    client = boto3.client("dynamodb", region_name="us-east-1")
    create_app_table(client, TABLE)
    return Stores(
        DynamoJobs(client, TABLE),
        DynamoLedger(client, TABLE),
        DynamoReservations(client, TABLE, monthly_budget=budget),
        DynamoSelections(client, TABLE),
    )


@pytest.fixture(params=["memory", "dynamodb"])
def make(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """make(budget) -> the four stores over one empty table, of the implementation under test."""
    if request.param == "memory":

        def memory(budget: int = 0) -> Stores:
            store = MemoryStore(monthly_budget=budget)
            return Stores(store.jobs, store.ledger, store.reservations, store.selections)

        yield memory
        return
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "test")
    with mock_aws():
        yield _dynamodb_stores


def outcome(job_id: str, *, images: int = 2, reserved: float = 0, status: str = "succeeded", **source: Any) -> Any:
    where = {"bucket": "b", "key": f"incoming/{job_id}.png", **source}
    code = {"rejected": "budget_exhausted", "failed": "claid_error"}.get(status)
    return GenerationDetail(
        status=status,  # type: ignore[arg-type]
        job_id=job_id,
        source=SourceObject(**where),
        images=images if status == "succeeded" else 0,
        credits=Credits(month=MONTH, reserved=reserved, used=2.0 * images if status == "succeeded" else 0),
        problem=Problem(code=code, message=code) if code else None,
        settings={"publish": "review"},
    )


# --- reservations and limits ---------------------------------------------------------------------------------
def test_a_job_reserves_once(make):
    s = make(100)
    first = s.reservations.reserve("j1", MONTH, Decimal(8))
    assert (first.outcome, first.committed) == ("reserved", Decimal(8))
    again = s.reservations.reserve("j1", MONTH, Decimal(8))
    assert (again.outcome, again.credits) == ("already_reserved", Decimal(8))
    assert s.reservations.holds("j1") and not s.reservations.holds("j2")
    assert s.ledger.month_usage(MONTH)["total"]["committed"] == Decimal(8)


def test_the_budget_bounds_what_is_held_and_thresholds_are_crossed_once(make):
    s = make(10)
    assert s.reservations.reserve("a", MONTH, Decimal(6)).crossed == ()
    assert s.reservations.reserve("b", MONTH, Decimal(2)).crossed == (80,)
    assert s.reservations.reserve("c", MONTH, Decimal(2)).crossed == (100,)
    assert s.reservations.reserve("d", MONTH, Decimal(2)).outcome == "over_budget"
    assert s.reservations.reserve("e", MONTH, Decimal(11)).outcome == "over_budget"
    assert not s.reservations.holds("d")


def test_a_held_reservation_is_topped_up_in_its_own_month(make):
    s = make(10)
    assert s.reservations.reserve("q", "2026-10", Decimal(4)).outcome == "reserved"
    topped = s.reservations.reserve("q", MONTH, Decimal(8))
    assert (topped.outcome, topped.credits, topped.month) == ("reserved", Decimal(8), "2026-10")
    assert s.reservations.reserve("q", MONTH, Decimal(12)).outcome == "over_budget"
    assert s.ledger.month_usage("2026-10")["total"]["committed"] == Decimal(8)


def test_release_gives_back_exactly_what_is_held_once(make):
    s = make(10)
    s.reservations.reserve("j1", MONTH, Decimal(8))
    assert s.reservations.release("j1", MONTH, Decimal(4)) is False  # it holds 8 now
    assert s.reservations.release("j1", MONTH, Decimal(8)) is True
    assert s.reservations.release("j1", MONTH, Decimal(8)) is False
    s.reservations.reserve("j2", MONTH, Decimal(6))
    assert s.reservations.release_held("j2") == Decimal(6) and s.reservations.release_held("j2") == 0
    assert s.ledger.month_usage(MONTH)["total"]["committed"] == 0


def test_a_backfill_holds_nothing_for_a_recorded_job(make):
    s = make(100)
    s.jobs.put_outcome(outcome("done", images=1))
    assert s.reservations.reserve("done", MONTH, Decimal(8), unless_recorded=True).outcome == "already_recorded"
    assert s.reservations.reserve("new", MONTH, Decimal(8), unless_recorded=True).outcome == "reserved"


def test_an_alert_is_claimed_once_per_period(make):
    s = make()
    assert s.reservations.claim_alert(MONTH, "budget_exhausted") is True
    assert s.reservations.claim_alert(MONTH, "budget_exhausted") is False
    assert s.reservations.claim_alert(MONTH, "budget_threshold") is True
    assert s.reservations.claim_alert("2026-12", "budget_exhausted") is True


# --- jobs and the ledger ---------------------------------------------------------------------------------------
def test_an_outcome_is_recorded_once_and_settles_its_reservation(make):
    s = make(100)
    s.reservations.reserve("j1", MONTH, Decimal(8))
    assert s.jobs.put_outcome(outcome("j1", images=3, reserved=8)) is True
    assert s.jobs.put_outcome(outcome("j1", images=3, reserved=8)) is False  # a redelivery
    total = s.ledger.month_usage(MONTH)["total"]
    assert (total["credits_used"], total["images"], total["jobs_succeeded"]) == (6, 3, 1)
    assert (total["credits_reserved"], total["committed"]) == (0, 6)
    assert not s.reservations.holds("j1")
    record = s.jobs.get("j1")
    assert record is not None and (record.credits, record.status, record.final) == (Decimal(6), "succeeded", True)
    assert record.is_outcome and record.generation().images == 3 and not record.notified
    assert s.jobs.get("nothing") is None


def test_mark_notified_sticks(make):
    s = make()
    s.jobs.put_outcome(outcome("j1"))
    s.jobs.mark_notified("j1")
    assert s.jobs.get("j1").notified is True


def test_the_days_and_profiles_add_up_to_the_month(make):
    s = make()
    for i, (images, profile) in enumerate([(4, "summer"), (1, None), (0, None)]):
        detail = outcome(f"j{i}", images=images, status="succeeded" if images else "failed")
        s.jobs.put_outcome(detail.model_copy(update={"profile": profile}))
    usage = s.ledger.month_usage(MONTH)
    [day] = usage["days"].values()
    assert {p: c["credits_used"] for p, c in day.items()} == {"summer": 8, "-": 2}
    assert {p: c["credits_used"] for p, c in usage["profiles"].items()} == {"summer": 8, "-": 2}
    assert usage["total"]["credits_used"] == 10 and day["-"]["jobs_failed"] == 1


def test_the_latest_pointer_moves_only_to_a_newer_version(make):
    s = make()
    photo = {"key": "incoming/cup.png"}
    assert s.jobs.put_outcome(outcome("new", version_id="v2", sequencer="0B", **photo)) is True
    assert s.jobs.put_outcome(outcome("old", version_id="v1", sequencer="0A", **photo)) is True  # recorded late
    assert s.jobs.latest_job_id("b", "incoming/cup.png") == "new"
    assert s.jobs.put_outcome(outcome("newer", version_id="v3", sequencer="0C", **photo)) is True
    assert s.jobs.latest_job_id("b", "incoming/cup.png") == "newer"
    assert s.jobs.latest_job_id("b", "incoming/other.png") is None


def test_a_refusal_gives_way_to_its_versions_outcome_and_a_verdict_to_nothing(make):
    s = make()
    photo = {"key": "incoming/cup.png", "version_id": "v1", "sequencer": "0A"}
    assert s.jobs.put_outcome(outcome("r1", status="rejected", **photo)) is True
    assert s.jobs.get("r1").is_outcome is False
    assert s.jobs.latest_job_id("b", "incoming/cup.png") == "r1"
    assert s.jobs.put_outcome(outcome("j1", **photo)) is True
    assert s.jobs.latest_job_id("b", "incoming/cup.png") == "j1"
    assert s.jobs.put_outcome(outcome("r2", status="rejected", **photo)) is True
    assert s.jobs.latest_job_id("b", "incoming/cup.png") == "j1"


def test_an_edit_attempt_is_committed_once(make):
    s = make(100)
    s.reservations.reserve("attempt-1", MONTH, Decimal(2))
    charge = EditCharge("e1", "attempt-1", MONTH, "summer", succeeded=True, used=2, reserved=2, at_risk=0, fields={})
    assert s.ledger.commit_edit(charge) is True
    assert s.ledger.commit_edit(charge) is False
    total = s.ledger.month_usage(MONTH)["total"]
    assert (total["edit_credits_used"], total["edits"], total["committed"], total["credits_reserved"]) == (2, 1, 2, 0)
    assert not s.reservations.holds("attempt-1")
    assert s.ledger.month_usage(MONTH)["profiles"]["summer"]["edits"] == 1


def test_the_jobs_of_a_day_are_listed(make):
    s = make()
    s.jobs.put_outcome(outcome("j1"))
    day = s.jobs.get("j1").recorded_day
    assert [row["job_id"] for row in s.jobs.recorded_on(day)] == ["j1"]
    assert list(s.jobs.recorded_on("2000-01-01")) == []


# --- selections ------------------------------------------------------------------------------------------------
def selection(version: int, job_id: str = "j1") -> SelectionRecord:
    return SelectionRecord(
        bucket="b",
        source_key="incoming/j1.png",
        version=version,
        job_id=job_id,
        selection=json.dumps({"version": version, "variants": [1]}),
        targets="[]",
        renditions="[]",
        retired="[]",
    )


def test_a_selection_claims_only_the_next_version_of_a_succeeded_job(make):
    s = make()
    s.jobs.put_outcome(outcome("j1"))
    s.jobs.put_outcome(outcome("failed", status="failed"))
    assert s.selections.current("b", "incoming/j1.png") is None
    assert s.selections.claim(selection(2)) is False  # version 1 comes first
    assert s.selections.claim(selection(1)) is True
    assert s.selections.claim(selection(1)) is False  # another choice won version 1
    assert s.selections.claim(selection(2, job_id="failed")) is False  # a failed job has no variants
    assert s.selections.claim(selection(2)) is True
    assert s.selections.current("b", "incoming/j1.png") == selection(2)
    job = s.jobs.get("j1")
    assert job.selection_version == 2 and json.loads(job.selection)["version"] == 2
