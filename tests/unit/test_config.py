"""The functions' environment: a bad number fails the cold start with the variable's name, not an upload later."""

from __future__ import annotations

import pytest
from backdrop.config import MAX_MONTHLY_CREDIT_BUDGET, ConfigError, ProcessorConfig, RecorderConfig

REQUIRED = {
    "EVENT_BUS_NAME": "backdrop",
    "APP_TABLE_NAME": "app",
    "IDEMPOTENCY_TABLE_NAME": "idempotency",
    "CLAID_API_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:claid",
    "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:backdrop",
}


@pytest.mark.parametrize("model", [ProcessorConfig, RecorderConfig])
@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "nan", "NaN", "1e999"])
def test_a_non_finite_budget_fails_the_cold_start_by_name(model, value):
    with pytest.raises(ConfigError) as failed:
        model.from_env({**REQUIRED, "MONTHLY_CREDIT_BUDGET": value})
    assert "MONTHLY_CREDIT_BUDGET: Input should be a finite number" in str(failed.value)


@pytest.mark.parametrize("model", [ProcessorConfig, RecorderConfig])
def test_a_budget_the_ledger_cannot_store_fails_by_name(model):
    with pytest.raises(ConfigError) as failed:
        model.from_env({**REQUIRED, "MONTHLY_CREDIT_BUDGET": "1e300"})
    assert "MONTHLY_CREDIT_BUDGET: Input should be less than or equal to 1000000000" in str(failed.value)
    with pytest.raises(ConfigError, match="MONTHLY_CREDIT_BUDGET: Input should be greater than or equal to 0"):
        model.from_env({**REQUIRED, "MONTHLY_CREDIT_BUDGET": "-5"})
    top = model.from_env({**REQUIRED, "MONTHLY_CREDIT_BUDGET": str(MAX_MONTHLY_CREDIT_BUDGET)})
    assert top.monthly_credit_budget == MAX_MONTHLY_CREDIT_BUDGET
    assert model.from_env({**REQUIRED, "MONTHLY_CREDIT_BUDGET": "12.5"}).monthly_credit_budget == 12.5


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_every_float_of_the_environment_is_finite(value):
    # The call budget has bounds of its own; inf and nan are refused as what they are, not as out of range.
    with pytest.raises(ConfigError) as failed:
        ProcessorConfig.from_env({**REQUIRED, "CLAID_CALL_BUDGET_SECONDS": value})
    assert "CLAID_CALL_BUDGET_SECONDS: Input should be a finite number" in str(failed.value)
