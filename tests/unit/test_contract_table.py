"""Our request models against the contract table: they take exactly the bodies Claid's OpenAPI takes."""

from __future__ import annotations

import json

import pytest
from backdrop.claid.models import SceneRequest
from pydantic import ValidationError

from tests.contract_cases import CASES


def test_the_table_is_big_enough_and_has_both_verdicts():
    assert len(CASES) >= 40
    assert {valid for _, _, valid in CASES} == {True, False}


@pytest.mark.parametrize(("body", "valid"), [(b, v) for _, b, v in CASES], ids=[n for n, _, _ in CASES])
def test_request_models_give_the_contracts_verdict(body, valid):
    try:
        parsed = SceneRequest.model_validate_json(json.dumps(body), strict=True)
    except ValidationError as exc:
        assert not valid, f"refused a body Claid takes: {exc}"
        return
    assert valid, "took a body Claid refuses"
    assert parsed.body() == body  # nothing lost or added on the way back out
