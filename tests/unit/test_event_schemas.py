"""The event schemas in docs/events/ are the ones the code emits (regenerate: python -m backdrop_kit.schemas): one
per detail type and EventBridge's envelope, open to what 1.x may add, closed only where a consumer must not see new
values."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from backdrop.events import DETAIL_TYPES, RECORDED, GenerationDetail
from backdrop_kit.asyncapi import examples
from backdrop_kit.schemas import DOCS, ENVELOPE, EVENT_TYPES, file_name, render, schemas
from jsonschema import Draft202012Validator

SCHEMAS = schemas()


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found += walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += walk(value, f"{path}/{i}")
    return found


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_committed_schema_matches_the_models(name):
    committed = DOCS / file_name(name)
    assert committed.is_file(), f"missing {committed}: run python -m backdrop_kit.schemas"
    assert committed.read_text() == render(SCHEMAS[name]), "stale schema: run python -m backdrop_kit.schemas"


def test_no_stale_schema_files():
    assert sorted(p.name for p in DOCS.glob("*.schema.json")) == sorted(file_name(n) for n in SCHEMAS)


def test_one_schema_per_detail_type_and_the_envelope():
    assert set(SCHEMAS) == {e.detail_type for e in EVENT_TYPES} | {ENVELOPE}
    assert {*DETAIL_TYPES.values(), RECORDED} <= set(SCHEMAS)
    for status, detail_type in DETAIL_TYPES.items():
        assert SCHEMAS[detail_type]["properties"]["status"]["const"] == status
    assert set(SCHEMAS[RECORDED]["properties"]["status"]["enum"]) == set(DETAIL_TYPES)
    for detail_type in ("Generation Failed", "Generation Rejected"):
        assert "problem" in SCHEMAS[detail_type]["required"]
    assert len({render(SCHEMAS[t]) for t in [*DETAIL_TYPES.values(), RECORDED]}) == 4


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_open_to_additive_change_except_the_command(name):
    closed = [path for path, node in walk(SCHEMAS[name]) if node.get("additionalProperties") is False]
    if name == "Select Variants":
        assert closed == [""], "the command refuses what it does not know (a field it would ignore)"
    else:
        assert closed == [], f"closed to additions at {closed}: derive the model from backdrop.events.EventDetail"


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_every_timestamp_has_the_date_time_format(name):
    for path, node in walk(SCHEMAS[name]):
        for field, spec in node.get("properties", {}).items():
            if field in ("occurred_at", "chosen_at", "time", "last_modified") and "anyOf" not in spec:
                assert spec.get("format") == "date-time", f"{path}/{field}"
            if field == "last_modified":
                assert {"format": "date-time", "type": "string"} in spec["anyOf"], f"{path}/{field}"


def test_versioned_and_open_sets_are_strings_with_their_known_values():
    assert SCHEMAS["Generation Succeeded"]["properties"]["schema_version"]["const"] == "1.0"
    assert "budget_exhausted" in SCHEMAS["Budget Alert"]["properties"]["kind"]["examples"]
    assert "enum" not in SCHEMAS["Budget Alert"]["properties"]["kind"]
    reason = SCHEMAS["Selection Rejected"]["properties"]["reason"]
    assert reason["type"] == "string" and "version_conflict" in reason["examples"]


@pytest.mark.parametrize("event", EVENT_TYPES, ids=lambda e: e.detail_type)
def test_a_consumer_validating_with_the_schema_keeps_working_when_a_field_is_added(event):
    detail = examples()[event.detail_type].model_dump(mode="json")
    validator = Draft202012Validator(SCHEMAS[event.detail_type])
    assert list(validator.iter_errors(detail)) == []
    grown = copy.deepcopy(detail)
    grown["added_in_1_1"] = 1
    for key, value in grown.items():
        if isinstance(value, dict) and key != "settings":  # settings is a map of names to values, not a model
            value["nested_addition"] = "x"
    if event.command:
        assert list(validator.iter_errors(grown)), "the command stays closed"
    else:
        assert list(validator.iter_errors(grown)) == []
        assert event.model.model_validate(grown) == event.model.model_validate(detail)  # ignored, not refused


def test_a_detail_from_before_final_says_it_by_its_code():
    old = json.loads(json.dumps(examples()["Generation Rejected"].model_dump(mode="json")))
    del old["final"]
    assert GenerationDetail.model_validate(old).final is False
    old["problem"]["code"] = "not_an_image"
    assert GenerationDetail.model_validate(old).final is True
