"""docs/events.md covers every event on the bus, links schemas that exist, and its JSON examples parse."""

import json
import re
from typing import Any

from backdrop_kit.schemas import DOCS, file_name, schemas
from pydantic import BaseModel

EVENTS_DOC = DOCS.parent / "events.md"


def test_every_event_is_documented_with_its_schema():
    text = EVENTS_DOC.read_text()
    for detail_type in schemas():
        assert f"`{detail_type}`" in text, f"docs/events.md does not describe {detail_type}"
        assert f"(events/{file_name(detail_type)})" in text, f"docs/events.md does not link {file_name(detail_type)}"


def invented(parsed: BaseModel, data: dict[str, Any], path: str = "") -> list[str]:
    """Fields of `data` that the model `parsed` came from does not have, at any depth."""
    found = []
    for key, value in data.items():
        if key not in type(parsed).model_fields:
            found.append(path + key)
            continue
        held = getattr(parsed, key)
        pairs = (
            zip(held, value, strict=False) if isinstance(held, list) and isinstance(value, list) else [(held, value)]
        )
        for model, raw in pairs:
            if isinstance(model, BaseModel) and isinstance(raw, dict):
                found += invented(model, raw, f"{path}{key}.")
    return found


def test_the_examples_are_valid_details():
    from backdrop.editing import RenditionsDetail
    from backdrop.events import BudgetAlertDetail, GenerationDetail
    from backdrop.publishing import SelectionRejectedDetail, SelectVariantsCommand, VariantsPublishedDetail

    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", EVENTS_DOC.read_text(), re.S)]
    assert len(blocks) >= 6
    for block in blocks:
        detail = block.get("detail", block)
        if "kind" in detail:
            model: type = BudgetAlertDetail
        elif "selection" in detail:
            model = VariantsPublishedDetail
        elif "failed" in detail:
            model = RenditionsDetail
        elif "reason" in detail:
            model = SelectionRejectedDetail
        elif "status" not in detail:
            model = SelectVariantsCommand
        else:
            model = GenerationDetail
        # The models ignore fields they do not know (1.x may add some): an invented one is caught here instead.
        assert invented(model.model_validate(detail), detail) == [], block
