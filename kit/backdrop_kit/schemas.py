"""Writes the JSON Schemas of the events on the bus into docs/events/ (a test keeps them in step with the code)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from backdrop.editing import RENDITIONS_FAILED, RENDITIONS_PUBLISHED, RenditionsDetail
from backdrop.events import BUDGET_ALERT, DETAIL_TYPES, RECORDED, BudgetAlertDetail, GenerationDetail
from backdrop.publishing import (
    SELECT_VARIANTS,
    SELECTION_REJECTED,
    VARIANTS_PUBLISHED,
    SelectionRejectedDetail,
    SelectVariantsCommand,
    VariantsPublishedDetail,
)

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
    for detail_type, model in (
        (BUDGET_ALERT, BudgetAlertDetail),
        (VARIANTS_PUBLISHED, VariantsPublishedDetail),
        (SELECTION_REJECTED, SelectionRejectedDetail),
        (RENDITIONS_PUBLISHED, RenditionsDetail),
        (RENDITIONS_FAILED, RenditionsDetail),
    ):
        found[detail_type] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"{detail_type} (source: backdrop) detail",
            **model.model_json_schema(mode="serialization"),
        }
    # The one command a storefront sends: validated as input, so its schema is the one the publisher accepts.
    found[SELECT_VARIANTS] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{SELECT_VARIANTS} (source: your storefront's, never backdrop) detail",
        **SelectVariantsCommand.model_json_schema(mode="validation"),
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
