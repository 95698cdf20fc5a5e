"""docs/asyncapi.yaml is the AsyncAPI 3.0 document the code's models make (regenerate: python -m
backdrop_kit.asyncapi), valid against AsyncAPI's own JSON Schema, with every reference resolving, every operation's
messages in its channel, and every example a valid payload of its message."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from backdrop.events import DETAIL_TYPES, RECORDED
from backdrop_kit.asyncapi import DOCUMENT, document, render
from backdrop_kit.schemas import EVENT_TYPES
from jsonschema import Draft7Validator, Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ASYNCAPI_SCHEMA = json.loads((Path(__file__).parent / "data" / "asyncapi-3.0.0.schema.json").read_text())
DOC = document()


def spec_errors(doc: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in Draft7Validator(ASYNCAPI_SCHEMA).iter_errors(doc)]


def refs(node: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        found = [(path, node["$ref"])] if isinstance(node.get("$ref"), str) else []
        return found + [r for k, v in node.items() for r in refs(v, f"{path}/{k}")]
    if isinstance(node, list):
        return [r for i, v in enumerate(node) for r in refs(v, f"{path}/{i}")]
    return []


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref}: only references inside the document"
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_committed_document_matches_the_models():
    assert DOCUMENT.is_file(), f"missing {DOCUMENT}: run python -m backdrop_kit.asyncapi"
    assert DOCUMENT.read_text() == render(DOC), "stale docs/asyncapi.yaml: run python -m backdrop_kit.asyncapi"
    assert yaml.safe_load(DOCUMENT.read_text()) == json.loads(json.dumps(DOC))


def test_it_is_a_valid_asyncapi_3_document():
    assert DOC["asyncapi"] == "3.0.0"
    assert spec_errors(DOC) == []


def test_the_check_catches_what_asyncapi_refuses():
    """The check is not vacuous: AsyncAPI 2's publish/subscribe, a message without its payload's shape, an
    unknown top-level field are each refused."""
    broken = copy.deepcopy(DOC)
    next(iter(broken["operations"].values()))["action"] = "publish"
    assert spec_errors(broken)
    broken = copy.deepcopy(DOC)
    broken["channels"]["bus"]["address"] = 42
    assert spec_errors(broken)
    broken = copy.deepcopy(DOC)
    broken["topics"] = {}
    assert spec_errors(broken)


def test_every_reference_resolves():
    for path, ref in refs(DOC):
        assert resolve(DOC, ref) is not None, f"{path}: {ref} resolves to nothing"


def test_operations_use_messages_of_their_channel_and_cover_every_event():
    for name, operation in DOC["operations"].items():
        channel = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel + "/messages/"), f"{name}: {message} is not in {channel}"
    titles = {m["title"] for m in DOC["components"]["messages"].values()}
    assert titles == {e.detail_type for e in EVENT_TYPES}
    assert {*DETAIL_TYPES.values(), RECORDED, "Variants Published", "Select Variants", "Webhook Ping"} <= titles
    # The command is what backdrop receives; everything else it sends.
    actions = {op["messages"][0]["$ref"].rsplit("/", 1)[1]: op["action"] for op in DOC["operations"].values()}
    assert actions.pop("SelectVariants") == "receive" and set(actions.values()) == {"send"}


def _validator(schema_ref: str) -> Draft202012Validator:
    # The payload schemas are pydantic's (JSON Schema 2020-12 keywords), referenced from the document's root.
    registry: Registry = Registry().with_resource(
        "urn:asyncapi", Resource.from_contents(DOC, default_specification=DRAFT202012)
    )
    return Draft202012Validator({"$ref": "urn:asyncapi" + schema_ref}, registry=registry)


@pytest.mark.parametrize("name", sorted(DOC["components"]["messages"]))
def test_each_example_is_a_valid_payload_of_its_message(name):
    message = DOC["components"]["messages"][name]
    [example] = message["examples"]
    validator = _validator(message["payload"]["$ref"])
    assert list(validator.iter_errors(example["payload"])) == []
    assert example["payload"]["detail-type"] == message["title"]
    # A detail that grew within 1.x is still valid (the command alone is closed); a wrong detail-type is not.
    grown = copy.deepcopy(example["payload"])
    grown["detail"]["added_in_1_1"] = {"anything": True}
    grown["added_by_eventbridge"] = "x"
    assert list(validator.iter_errors(grown)) == [] or name == "SelectVariants"
    wrong = copy.deepcopy(example["payload"])
    wrong["detail-type"] = "Something Else"
    assert list(validator.iter_errors(wrong))


def test_a_rejection_is_never_a_success():
    example = DOC["components"]["messages"]["GenerationRejected"]["examples"][0]["payload"]
    assert list(_validator("#/components/schemas/GenerationRejectedEvent").iter_errors(example)) == []
    assert list(_validator("#/components/schemas/GenerationSucceededEvent").iter_errors(example))
