"""Budget alerts on the bus: the one way the processor and the renditions function say a budget or Claid's
account needs a person, each at most once per period."""

from __future__ import annotations

from typing import Any

from backdrop.events import BUDGET_ALERT, AlertKind, BudgetAlertDetail, put_on_bus
from backdrop.store.reservations import Reservations


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
