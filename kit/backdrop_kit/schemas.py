"""Writes the JSON Schemas of the events on the bus into docs/events/ (a test keeps them in step with the code)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from backdrop.events import BUDGET_ALERT, DETAIL_TYPES, RECORDED, BudgetAlertDetail, GenerationDetail

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events"


def schemas() -> dict[str, dict[str, Any]]:
    generation = GenerationDetail.model_json_schema(mode="serialization")
    found: dict[str, dict[str, Any]] = {}
    for detail_type in [*DETAIL_TYPES.values(), RECORDED]:
        found[detail_type] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"{detail_type} (source: backdrop) detail",
            **generation,
        }
    found[BUDGET_ALERT] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{BUDGET_ALERT} (source: backdrop) detail",
        **BudgetAlertDetail.model_json_schema(mode="serialization"),
    }
    return found


def file_name(detail_type: str) -> str:
    return detail_type.lower().replace(" ", "-") + ".schema.json"


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> int:
    DOCS.mkdir(parents=True, exist_ok=True)
    for detail_type, schema in schemas().items():
        (DOCS / file_name(detail_type)).write_text(render(schema))
        print(f"wrote {DOCS / file_name(detail_type)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
