"""Budget alerts on the bus: the one way the processor and the renditions function say a budget or Claid's
account needs a person, each at most once per period."""

from __future__ import annotations

from typing import Any

from backdrop.events import BUDGET_ALERT, AlertKind, BudgetAlertDetail, put_on_bus
from backdrop.measures import measure
from backdrop.store.reservations import Reservation, Reservations


def send_alert(
    reservations: Reservations,
    events: Any,
    bus_name: str,
    kind: AlertKind,
    month: str,
    message: str,
    *,
    once_per: str | None = None,
    **fields: Any,
) -> None:
    """Puts a Budget Alert on the bus; with `once_per`, only the first of that kind in that period."""
    if once_per is not None and not reservations.claim_alert(once_per, kind):
        return
    put_on_bus(events, bus_name, BUDGET_ALERT, BudgetAlertDetail(kind=kind, month=month, message=message, **fields))


class SendsAlerts:
    """What the logic that spends credits (processing.Processor, editing.Editor) uses to raise a budget alert:
    `self._alert(kind, month, message, once_per=...)`, from its reservations, its bus client and its bus name."""

    reservations: Reservations
    events: Any
    config: Any  # any function config with event_bus_name

    def _alert(self, kind: AlertKind, month: str, message: str, *, once_per: str | None = None, **fields: Any) -> None:
        send_alert(
            self.reservations,
            self.events,
            self.config.event_bus_name,
            kind,
            month,
            message,
            once_per=once_per,
            **fields,
        )

    def _budget_exhausted(self, month: str, refused: str) -> None:
        """Once a month: `refused` (uploads, renditions) are being refused for want of budget."""
        budget = self.reservations.budget
        self._alert(
            "budget_exhausted",
            month,
            f"{refused} are being refused: the monthly budget of {budget} credits is spent or reserved",
            once_per=month,
            budget=float(budget),
        )

    def _budget_committed(self, reservation: Reservation, month: str) -> None:
        """After a reservation: the committed share as a metric, and an alert for each threshold it crossed."""
        budget = self.reservations.budget
        if budget > 0 and reservation.committed is not None:
            measure("BudgetCommittedPercent", float(reservation.committed * 100 / budget), "Percent")
        for threshold in reservation.crossed:
            self._alert(
                "budget_threshold",
                month,
                f"{threshold}% of the monthly credit budget is committed",
                once_per=f"{month}/{threshold}",
                threshold_percent=threshold,
                committed=float(reservation.committed or 0),
                budget=float(budget),
            )
