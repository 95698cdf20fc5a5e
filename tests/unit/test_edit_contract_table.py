"""Our image edit models against the edit contract table: they take exactly the bodies Claid takes, and refuse
the ones Claid's schema or its server refuses."""

from __future__ import annotations

import json

import pytest
from backdrop.claid.edit_models import EditRequest
from pydantic import ValidationError

from tests.edit_contract_cases import CASES


def test_the_table_is_big_enough_and_has_every_verdict():
    assert len(CASES) >= 40
    assert {verdict for _, _, verdict in CASES} == {"valid", "invalid", "refused"}


@pytest.mark.parametrize(("body", "verdict"), [(b, v) for _, b, v in CASES], ids=[n for n, _, _ in CASES])
def test_edit_models_give_the_contracts_verdict(body, verdict):
    try:
        parsed = EditRequest.model_validate_json(json.dumps(body), strict=True)
    except ValidationError as exc:
        assert verdict != "valid", f"refused a body Claid takes: {exc}"
        return
    assert verdict == "valid", f"took a body Claid answers {verdict}"
    assert parsed.body() == body  # nothing lost or added on the way back out
