"""Argument types for the `backdrop` commands: a bad number or text is refused while the command line is read,
with a message naming the option, and the command exits 2 before it starts anything."""

from __future__ import annotations

import argparse
import math
import unicodedata
from collections.abc import Callable, Iterable
from typing import TypeVar

Number = TypeVar("Number", int, float)

# The longest call budget a stack can have (template.yaml, ClaidCallBudgetSeconds): a median latency past it
# describes a Claid whose calls could never finish.
MAX_LATENCY_SECONDS = 600.0
PORTS = (0, 65535)

# Line and paragraph separators break a line as surely as '\n' (str.splitlines splits on them), and a lone
# surrogate is how Python hands over argument bytes that are not text in the terminal's encoding. Format characters
# (Cf: joiners in emoji, Persian and Indic scripts) and spaces of any script are printable text and stay allowed.
_NOT_TEXT = {"Cc": "a control character", "Zl": "a line separator", "Zp": "a paragraph separator"}


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _amount(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def number(
    kind: Callable[[str], Number], *, at_least: float | None = None, at_most: float | None = None
) -> Callable[[str], Number]:
    """A type for argparse: `kind` (int or float) read from the text, finite and within [at_least, at_most]."""
    whole = kind is int
    if at_least is not None and at_most is not None:
        bounds = f"from {_amount(at_least)} to {_amount(at_most)}"
    elif at_least is not None:
        bounds = f"{_amount(at_least)} or more"
    elif at_most is not None:
        bounds = f"{_amount(at_most)} or less"
    else:
        bounds = ""

    def parse(text: str) -> Number:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{_shown(text)} is not a {'whole number' if whole else 'number'}"
                + (f"; give one {bounds}" if bounds else "")
            ) from None
        # inf and nan parse as floats but are no amount of anything; 1e999 parses as inf.
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(
                f"{_shown(text)} is not a finite number" + (f"; give one {bounds}" if bounds else "")
            )
        if (at_least is not None and value < at_least) or (at_most is not None and value > at_most):
            raise argparse.ArgumentTypeError(f"{_shown(text)} is out of range; give a number {bounds}")
        return value

    return parse


def printable(*, min_chars: int = 0, max_chars: int | None = None) -> Callable[[str], str]:
    """A type for argparse: printable text in any language, on one line, of a bounded length."""

    def parse(value: str) -> str:
        for position, char in enumerate(value, start=1):
            category = unicodedata.category(char)
            if category == "Cs":
                raise argparse.ArgumentTypeError(
                    f"holds bytes that are not text in this terminal's encoding (character {position}); "
                    "check the locale (LANG, LC_ALL) or retype the value"
                )
            if category in _NOT_TEXT:
                raise argparse.ArgumentTypeError(
                    f"holds {_NOT_TEXT[category]} (U+{ord(char):04X}) at character {position}: {_shown(value)}; "
                    "give printable text on one line"
                )
        if len(value) < min_chars:
            raise argparse.ArgumentTypeError(f"must be at least {min_chars} character(s) long")
        if max_chars is not None and len(value) > max_chars:
            raise argparse.ArgumentTypeError(f"is {len(value)} characters long; at most {max_chars}")
        return value

    return parse


def comma_separated(choices: Iterable[str]) -> Callable[[str], tuple[str, ...]]:
    """A type for argparse: a comma-separated list of some of `choices` (empty items ignored)."""
    known = tuple(choices)

    def parse(value: str) -> tuple[str, ...]:
        items = tuple(item.strip() for item in printable()(value).split(",") if item.strip())
        unknown = [item for item in items if item not in known]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(map(repr, unknown))}; choose from {', '.join(known)}")
        return items

    return parse


def new_file(suffix: str) -> Callable[[str], str]:
    """A type for argparse: a path to write, ending with `suffix`, whose folder exists and can be written, so a
    command that draws or writes at its end does not fail there after its work is done."""

    def parse(value: str) -> str:
        import os
        from pathlib import Path

        path = Path(printable(min_chars=1)(value))
        if path.suffix.lower() != suffix:
            raise argparse.ArgumentTypeError(f"{_shown(value)} must end with {suffix}")
        folder = path.parent
        if not folder.is_dir():
            raise argparse.ArgumentTypeError(f"{_shown(value)}: no folder {str(folder)!r}; create it first")
        if not os.access(folder, os.W_OK):
            raise argparse.ArgumentTypeError(f"{_shown(value)}: the folder {str(folder)!r} cannot be written")
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{_shown(value)} is a folder; give a file name")
        return str(path)

    return parse
