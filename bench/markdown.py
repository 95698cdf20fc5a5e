"""Markdown pieces the report is made of: tables, and sections that opt-in commands keep in the report (each
between markers, carried over when `make bench` writes the report again)."""

from __future__ import annotations

import re
from collections.abc import Sequence


def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *["| " + " | ".join(row) + " |" for row in rows],
    ]


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- kept: {name} -->", f"<!-- /kept: {name} -->"


def kept(name: str, lines: list[str]) -> str:
    """A section an opt-in command wrote, marked so the next full run keeps it."""
    begin, end = _markers(name)
    return "\n".join([begin, *lines, end])


def kept_sections(text: str) -> list[str]:
    """Every marked section in a report, in order."""
    return re.findall(r"<!-- kept: [^>]+ -->.*?<!-- /kept: [^>]+ -->", text, flags=re.S)


def put_section(text: str, name: str, lines: list[str]) -> str:
    """The report with section `name` replaced (or added at the end)."""
    begin, end = _markers(name)
    section = kept(name, lines)
    pattern = re.escape(begin) + ".*?" + re.escape(end)
    if re.search(pattern, text, flags=re.S):
        return re.sub(pattern, lambda _: section, text, flags=re.S)
    return text.rstrip("\n") + "\n\n" + section + "\n"
