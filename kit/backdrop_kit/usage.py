"""A month of the ledger for people: rows by day, profile or status, and a chart of the month's credits so far."""

from __future__ import annotations

import calendar
import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

BY = ("day", "profile", "status")
STATUSES = ("succeeded", "failed", "rejected")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def check_month(month: str) -> str:
    """YYYY-MM with a real month, or ValueError saying what is wrong."""
    match = _MONTH.match(month)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"month {month!r} is not a month: write YYYY-MM, e.g. 2026-11")
    return month


def _num(value: Any) -> float:
    return float(value or 0)


def rows(usage: dict[str, Any], by: str) -> list[dict[str, Any]]:
    """The month's figures, one row per day, profile or status."""
    if by == "profile":
        return [
            {
                "profile": profile,
                "credits": _num(c.get("credits_used")),
                "images": int(c.get("images", 0)),
                **{status: int(c.get(f"jobs_{status}", 0)) for status in STATUSES},
            }
            for profile, c in sorted(usage["profiles"].items())
        ]
    if by == "status":
        total = usage["total"]
        return [{"status": status, "jobs": int(total.get(f"jobs_{status}", 0))} for status in STATUSES]
    if by == "day":
        return [
            {
                "day": day,
                "credits": sum(_num(c.get("credits_used")) for c in profiles.values()),
                "images": sum(int(c.get("images", 0)) for c in profiles.values()),
                "profiles": {p: _num(c.get("credits_used")) for p, c in sorted(profiles.items())},
            }
            for day, profiles in sorted(usage["days"].items())
        ]
    raise ValueError(f"--by must be one of {', '.join(BY)}")


def table(records: list[dict[str, Any]]) -> str:
    """Rows as aligned text columns (nested values left out)."""
    if not records:
        return "(nothing recorded)"
    columns = [k for k, v in records[0].items() if not isinstance(v, dict)]
    cells = [[_cell(r[c]) for c in columns] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# Colour-blind-safe (Okabe-Ito), assigned to profiles in name order.
PALETTE = [(0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (213, 94, 0), (240, 228, 66)]
BUDGET_COLOUR = (200, 30, 30)
PACE_COLOUR = (120, 120, 120)


def _round_step(rough: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k not below `rough`: grid lines people can read."""
    magnitude = 10 ** math.floor(math.log10(rough))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= rough)


def cumulative(usage: dict[str, Any]) -> dict[int, dict[str, float]]:
    """Per day of the month, each profile's credits from the 1st up to and including that day."""
    year, month = (int(part) for part in usage["month"].split("-"))
    days = calendar.monthrange(year, month)[1]
    per_day = {int(day[-2:]): profiles for day, profiles in usage["days"].items()}
    profiles = sorted({p for day in per_day.values() for p in day})
    running = dict.fromkeys(profiles, 0.0)
    found: dict[int, dict[str, float]] = {}
    for day in range(1, days + 1):
        for profile in profiles:
            running[profile] += _num(per_day.get(day, {}).get(profile, {}).get("credits_used"))
        found[day] = dict(running)
    return found


def draw_chart(usage: dict[str, Any], budget: float | Decimal, path: Path) -> None:
    """The month's credits so far, day by day: a bar per day holding everything spent from the 1st to that day,
    stacked by profile, against the monthly budget (a dashed line; a bar that reaches it means uploads are being
    refused) and the even pace that ends the month at the budget (dotted). Labelled axes; days without usage keep
    the total of the day before."""
    from PIL import Image, ImageDraw, ImageFont

    totals = cumulative(usage)
    days = len(totals)
    profiles = sorted({p for day in totals.values() for p in day})
    colours = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(profiles)}
    budget_value = float(budget or 0)
    month_total = sum(totals[days].values()) if days else 0.0
    tallest = max(month_total, budget_value, 1.0)

    width, height = 900, 520
    left, right, top, bottom = 90, 20, 50, 90
    plot_w, plot_h = width - left - right, height - top - bottom
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()

    def y_of(credits: float) -> int:
        return round(top + plot_h - plot_h * credits / (tallest * 1.1))

    spent = _num(usage["total"].get("credits_used"))
    of_budget = f" of a {budget_value:g} budget" if budget_value else " (no budget set)"
    draw.text(
        (left, 15), f"backdrop: credits used in {usage['month']}, cumulative: {spent:g}{of_budget}", "black", font
    )
    tick = _round_step(tallest * 1.1 / 5)
    for step in range(int(tallest * 1.1 // tick) + 1):  # horizontal grid at round numbers of credits
        credits = step * tick
        y = y_of(credits)
        draw.line([(left, y), (width - right, y)], fill=(225, 225, 225))
        draw.text((left - 8 - 6 * len(f"{credits:g}"), y - 6), f"{credits:g}", "black", font)
    slot = plot_w / days
    shown = _last_day(usage["month"], days)  # days still to come have nothing to show
    for day, by_profile in totals.items():
        x0 = left + (day - 1) * slot + slot * 0.15
        x1 = left + day * slot - slot * 0.15
        base = 0.0
        for profile in profiles if day <= shown else []:
            credits = by_profile[profile]
            if credits:
                draw.rectangle([x0, y_of(base + credits), x1, y_of(base)], fill=colours[profile])
                base += credits
        if day == 1 or day % 5 == 0:
            draw.text((x0, top + plot_h + 6), str(day), "black", font)
    draw.line([(left, top + plot_h), (width - right, top + plot_h)], fill="black")
    draw.line([(left, top), (left, top + plot_h)], fill="black")
    if budget_value:
        y = y_of(budget_value)
        for x in range(left, width - right, 12):  # the budget: dashed
            draw.line([(x, y), (min(x + 7, width - right), y)], fill=BUDGET_COLOUR, width=2)
        draw.text((width - right - 170, y - 16), f"monthly budget {budget_value:g}", BUDGET_COLOUR, font)
        for day in range(1, days + 1):  # the even pace to the budget: dotted
            centre, height_at = left + (day - 0.5) * slot, y_of(budget_value * day / days)
            draw.rectangle([centre - 1, height_at - 1, centre + 1, height_at + 1], fill=PACE_COLOUR)
    # The axes say what they measure.
    draw.text((left + plot_w // 2 - 60, top + plot_h + 24), "day of the month (UTC)", "black", font)
    label = Image.new("RGB", (220, 14), "white")
    ImageDraw.Draw(label).text((0, 0), "credits used since the 1st", "black", font)
    image.paste(label.rotate(90, expand=True), (8, top + plot_h // 2 - 110))
    x = left
    for profile in profiles:  # legend
        draw.rectangle([x, height - 22, x + 12, height - 10], fill=colours[profile])
        name = "no profile" if profile == "-" else profile
        draw.text((x + 16, height - 23), name, "black", font)
        x += 30 + 7 * len(name)
    if budget_value:
        draw.text((x + 10, height - 23), "dashed: the budget; dots: an even pace to it", "black", font)
    image.save(path)


def _last_day(month: str, days: int) -> int:
    """The last day of `month` with figures: today in the month under way, else its last day."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    if now.strftime("%Y-%m") == month:
        return now.day
    return days if now.strftime("%Y-%m") > month else 0
