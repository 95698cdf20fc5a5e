"""In-memory stand-ins for the four stores, for unit tests: the same conditions as the DynamoDB ones (a job
reserves once, an outcome is recorded once, the latest-job pointer moves only to a newer version, an alert is
claimed once, a selection claims only the next version), proven by the same contract tests
(tests/unit/test_store_contract.py). They share one `MemoryTable`, as the real ones share one table, so that a
write across two of them (an outcome and its ledger lines) is seen by both.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from backdrop.credits import as_decimal
from backdrop.events import GenerationDetail
from backdrop.store.jobs import JobRecord, moves_pointer, outcome_item, outcome_settlement, pointer_item
from backdrop.store.ledger import EditCharge
from backdrop.store.reservations import Reservation, crossed
from backdrop.store.selections import SelectionRecord

Counters = dict[str, Decimal]


class MemoryTable:
    """What the application table would hold, by kind."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.latest: dict[tuple[str, str], dict[str, Any]] = {}
        self.reservations: dict[str, tuple[Decimal, str]] = {}
        self.lines: dict[tuple[str, str], Counters] = {}  # (month, TOTAL | PROFILE#p | DAY#d#PROFILE#p)
        self.alerts: set[tuple[str, str]] = set()
        self.edits: dict[tuple[str, str], dict[str, Any]] = {}
        self.selections: dict[tuple[str, str], SelectionRecord] = {}

    def add(self, month: str, line: str, values: dict[str, Decimal | int]) -> None:
        counters = self.lines.setdefault((month, line), {})
        for name, value in values.items():
            counters[name] = counters.get(name, Decimal(0)) + Decimal(value)

    def committed(self, month: str) -> Decimal:
        return self.lines.get((month, "TOTAL"), {}).get("committed", Decimal(0))

    def settle(
        self, month: str, profile: str | None, counters: dict[str, Decimal | int], settled: Decimal, reserved: Decimal
    ) -> None:
        day, profile = datetime.now(UTC).strftime("%Y-%m-%d"), profile or "-"
        self.add(month, "TOTAL", {**counters, "credits_reserved": -reserved, "committed": settled - reserved})
        self.add(month, f"PROFILE#{profile}", counters)
        self.add(month, f"DAY#{day}#PROFILE#{profile}", counters)


def _line(expression: str, values: dict[str, Any]) -> dict[str, Decimal | int]:
    """'ADD a :x, b :y' with {':x': 1, ':y': 2} -> {'a': 1, 'b': 2}: the DynamoDB side's own counter lines."""
    pairs = (part.split() for part in expression.removeprefix("ADD ").split(","))
    return {name: values[placeholder] for name, placeholder in pairs}


class MemoryJobs:
    def __init__(self, table: MemoryTable) -> None:
        self._t = table

    def put_outcome(self, detail: GenerationDetail) -> bool:
        if detail.job_id in self._t.jobs:
            return False
        recorded = datetime.now(UTC)
        self._t.jobs[detail.job_id] = outcome_item(detail, recorded)
        where = (detail.source.bucket, detail.source.key)
        if moves_pointer(detail, self._t.latest.get(where)):
            self._t.latest[where] = pointer_item(detail, recorded.isoformat(timespec="milliseconds"))
        line, values, settled, reserved = outcome_settlement(detail, recorded.strftime("%Y-%m-%d"))
        self._t.settle(detail.credits.month, detail.profile, _line(line, values), settled, reserved)
        if reserved:
            self._t.reservations.pop(detail.job_id, None)
        return True

    def get(self, job_id: str) -> JobRecord | None:
        item = self._t.jobs.get(job_id)
        return JobRecord.model_validate(item) if item else None

    def latest_job_id(self, bucket: str, source_key: str) -> str | None:
        pointer = self._t.latest.get((bucket, source_key))
        return str(pointer["job_id"]) if pointer else None

    def mark_notified(self, job_id: str) -> None:
        if job_id in self._t.jobs:
            self._t.jobs[job_id]["notified"] = True

    def recorded_on(self, day: str) -> Iterator[dict[str, Any]]:
        yield from (dict(item) for item in self._t.jobs.values() if item.get("recorded_day") == day)


class MemoryLedger:
    def __init__(self, table: MemoryTable) -> None:
        self._t = table

    def month_usage(self, month: str) -> dict[str, Any]:
        usage: dict[str, Any] = {"month": month, "total": {}, "profiles": {}, "days": {}}
        for (line_month, line), counters in self._t.lines.items():
            if line_month != month:
                continue
            if line == "TOTAL":
                usage["total"] = dict(counters)
            elif line.startswith("PROFILE#"):
                usage["profiles"][line.removeprefix("PROFILE#")] = dict(counters)
            else:
                day, _, profile = line.removeprefix("DAY#").partition("#PROFILE#")
                usage["days"].setdefault(day, {})[profile] = dict(counters)
        return usage

    def commit_edit(self, charge: EditCharge) -> bool:
        if (charge.edit_id, charge.attempt_id) in self._t.edits:
            return False
        spent, held, risk = as_decimal(charge.used), as_decimal(charge.reserved), as_decimal(charge.at_risk)
        self._t.edits[(charge.edit_id, charge.attempt_id)] = {
            **charge.fields,
            "edit_id": charge.edit_id,
            "month": charge.month,
            "credits": spent,
        }
        counters: dict[str, Decimal | int] = {
            "edit_credits_used": spent,
            "edits" if charge.succeeded else "edits_failed": 1,
            "edit_credits_at_risk": risk,
        }
        self._t.settle(charge.month, charge.profile, counters, spent + risk, held)
        if held:
            self._t.reservations.pop(charge.attempt_id, None)
        return True


class MemoryReservations:
    def __init__(self, table: MemoryTable, *, monthly_budget: float | Decimal = 0) -> None:
        self._t = table
        self.budget = as_decimal(monthly_budget)

    def _fits(self, month: str, credits: Decimal) -> bool:
        return not self.budget or self._t.committed(month) + credits <= self.budget

    def reserve(self, job_id: str, month: str, credits: Decimal, *, unless_recorded: bool = False) -> Reservation:
        if self.budget and credits > self.budget:
            return Reservation("over_budget", credits, month)
        held = self._t.reservations.get(job_id)
        if held is not None:
            held_credits, held_month = held
            if held_credits >= credits:
                return Reservation("already_reserved", held_credits, held_month)
            month, more = held_month, credits - held_credits
        else:
            more = credits
            if unless_recorded and job_id in self._t.jobs and self._fits(month, more):
                return Reservation("already_recorded", credits, month)
        if not self._fits(month, more):
            return Reservation("over_budget", credits, month)
        self._t.reservations[job_id] = (credits, month)
        self._t.add(month, "TOTAL", {"credits_reserved": more, "committed": more})
        committed = self._t.committed(month)
        return Reservation("reserved", credits, month, committed, crossed(self.budget, committed, more))

    def release(self, job_id: str, month: str, credits: Decimal) -> bool:
        if self._t.reservations.get(job_id, (None, ""))[0] != credits:
            return False
        del self._t.reservations[job_id]
        self._t.add(month, "TOTAL", {"credits_reserved": -credits, "committed": -credits})
        return True

    def release_held(self, job_id: str) -> Decimal:
        held = self._t.reservations.get(job_id)
        if held is None:
            return Decimal(0)
        credits, month = held
        return credits if self.release(job_id, month, credits) else Decimal(0)

    def holds(self, job_id: str) -> bool:
        return job_id in self._t.reservations

    def claim_alert(self, period: str, kind: str) -> bool:
        if (period, kind) in self._t.alerts:
            return False
        self._t.alerts.add((period, kind))
        return True


class MemorySelections:
    def __init__(self, table: MemoryTable) -> None:
        self._t = table

    def current(self, bucket: str, source_key: str) -> SelectionRecord | None:
        return self._t.selections.get((bucket, source_key))

    def claim(self, record: SelectionRecord) -> bool:
        where = (record.bucket, record.source_key)
        current = self._t.selections.get(where)
        job = self._t.jobs.get(record.job_id)
        if (current.version if current else 0) != record.version - 1 or job is None or job["status"] != "succeeded":
            return False
        self._t.selections[where] = record
        job.update(selection=record.selection, selection_version=record.version)
        return True


class MemoryStore:
    """The four stores over one in-memory table."""

    def __init__(self, *, monthly_budget: float | Decimal = 0) -> None:
        self.table = MemoryTable()
        self.jobs = MemoryJobs(self.table)
        self.ledger = MemoryLedger(self.table)
        self.reservations = MemoryReservations(self.table, monthly_budget=monthly_budget)
        self.selections = MemorySelections(self.table)
