"""The application table as template.yaml declares it (keys and indexes), for tests that create it on moto
themselves rather than through the local stack."""

from __future__ import annotations

from typing import Any

from backdrop_kit.template import load_template


def create_app_table(client: Any, name: str) -> str:
    declared = load_template().raw["Resources"]["AppTable"]["Properties"]
    client.create_table(
        TableName=name,
        KeySchema=declared["KeySchema"],
        AttributeDefinitions=declared["AttributeDefinitions"],
        GlobalSecondaryIndexes=declared["GlobalSecondaryIndexes"],
        BillingMode="PAY_PER_REQUEST",
    )
    return name
