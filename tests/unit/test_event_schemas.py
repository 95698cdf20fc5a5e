"""The event schemas in docs/events/ are the ones the code emits (regenerate: python -m backdrop_kit.schemas)."""

import pytest
from backdrop_kit.schemas import DOCS, file_name, render, schemas


@pytest.mark.parametrize("detail_type", list(schemas()))
def test_committed_schema_matches_the_models(detail_type):
    committed = DOCS / file_name(detail_type)
    assert committed.is_file(), f"missing {committed}: run python -m backdrop_kit.schemas"
    assert committed.read_text() == render(schemas()[detail_type]), "stale schema: run python -m backdrop_kit.schemas"


def test_generation_detail_is_versioned():
    schema = schemas()["Generation Succeeded"]
    assert schema["properties"]["schema_version"]["const"] == "1.0"
