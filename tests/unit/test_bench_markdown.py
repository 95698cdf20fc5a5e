"""Sections an opt-in bench command writes survive the next full report."""

from __future__ import annotations

from bench import markdown


def test_a_section_is_added_then_replaced_in_place() -> None:
    text = markdown.put_section("# Benchmarks\n\nbody\n", "compare shapes", ["## Shapes", "first"])
    assert text.endswith("<!-- kept: compare shapes -->\n## Shapes\nfirst\n<!-- /kept: compare shapes -->\n")
    again = markdown.put_section(text + "\ntail\n", "compare shapes", ["## Shapes", "second"])
    assert "first" not in again
    assert again.index("second") < again.index("tail")


def test_kept_sections_are_found_in_order() -> None:
    text = markdown.put_section("# B\n", "compare limiter", ["a"])
    text = markdown.put_section(text, "compare shapes", ["b"])
    found = markdown.kept_sections("# regenerated\n" + text)
    assert found == [markdown.kept("compare limiter", ["a"]), markdown.kept("compare shapes", ["b"])]
