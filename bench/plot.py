"""Draws the burst's Claid calls in flight over time as a PNG (Pillow only: the kit has no plotting library)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1200, 560
LEFT, RIGHT, TOP, BOTTOM = 70, 30, 60, 60
INK = (40, 40, 40)
GRID = (225, 225, 225)
SERIES = (30, 110, 200)
MARKS = ((200, 60, 40), (230, 140, 20), (120, 120, 120))


@dataclass(frozen=True)
class Level:
    """A horizontal line with its label (a Little's-law level, a capacity)."""

    value: float
    label: str


@dataclass(frozen=True)
class Moment:
    """A vertical line with its label (the bound, the measured makespan)."""

    at: float
    label: str


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def _nice_step(span: float, ticks: int) -> float:
    raw = span / max(1, ticks)
    for step in (1, 2, 5, 10, 15, 20, 25, 30, 50, 60, 100, 120, 200, 300, 600):
        if step >= raw:
            return float(step)
    return raw


def in_flight_png(
    path: Path,
    series: Sequence[tuple[float, int]],
    *,
    title: str,
    levels: Sequence[Level] = (),
    moments: Sequence[Moment] = (),
) -> None:
    x_max = max([t for t, _ in series] + [m.at for m in moments] + [1.0]) * 1.04
    y_max = max([n for _, n in series] + [lv.value for lv in levels] + [1]) * 1.1
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font, small = _font(16), _font(13)

    def x(t: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * t / x_max

    def y(n: float) -> float:
        return HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * n / y_max

    x_step, y_step = _nice_step(x_max, 12), _nice_step(y_max, 8)
    t = 0.0
    while t <= x_max:
        draw.line([(x(t), TOP), (x(t), HEIGHT - BOTTOM)], fill=GRID)
        draw.text((x(t), HEIGHT - BOTTOM + 6), f"{t:g}", fill=INK, font=small, anchor="mt")
        t += x_step
    n = 0.0
    while n <= y_max:
        draw.line([(LEFT, y(n)), (WIDTH - RIGHT, y(n))], fill=GRID)
        draw.text((LEFT - 8, y(n)), f"{n:g}", fill=INK, font=small, anchor="rm")
        n += y_step
    draw.rectangle([(LEFT, TOP), (WIDTH - RIGHT, HEIGHT - BOTTOM)], outline=INK)
    draw.text((WIDTH / 2, 20), title, fill=INK, font=font, anchor="mt")
    draw.text((WIDTH / 2, HEIGHT - 22), "seconds since the burst was queued", fill=INK, font=small, anchor="mt")
    draw.text((12, TOP - 24), "Claid calls in flight", fill=INK, font=small)

    for index, level in enumerate(levels):
        colour = MARKS[index % len(MARKS)]
        draw.line([(LEFT, y(level.value)), (WIDTH - RIGHT, y(level.value))], fill=colour, width=2)
        draw.text((LEFT + 6, y(level.value) - 4), level.label, fill=colour, font=small, anchor="lb")
    for index, moment in enumerate(moments):
        colour = MARKS[(index + 1) % len(MARKS)]
        for top in range(TOP, HEIGHT - BOTTOM, 12):  # dashed
            draw.line([(x(moment.at), top), (x(moment.at), min(top + 6, HEIGHT - BOTTOM))], fill=colour, width=2)
        draw.text(
            (x(moment.at) - 4, HEIGHT - BOTTOM - 8 - 18 * index), moment.label, fill=colour, font=small, anchor="rb"
        )

    points = []
    for t, count in series:
        points.append((x(t), y(count)))
    if len(points) > 1:
        draw.line(points, fill=SERIES, width=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)
