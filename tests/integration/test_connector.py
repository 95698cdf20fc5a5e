"""Claid's storage connector in one step: the stack's least-privilege IAM user, and `connect-storage --stack`."""

from __future__ import annotations

import json

import pytest
from backdrop_kit.cli import main
from backdrop_kit.template import allows

from .conftest import Pipeline


@pytest.fixture
def connected(make_pipeline) -> Pipeline:
    pipeline = make_pipeline(parameters={"CreateClaidConnectorUser": "true"})
    pipeline.stack.publish()
    return pipeline


def test_the_connector_user_reads_incoming_and_generated_writes_generated_and_nothing_else(connected: Pipeline):
    stack, bucket = connected.stack, connected.bucket
    [policy] = stack.template.raw["Resources"]["ClaidConnectorUser"]["Properties"]["Policies"]
    statements = stack.resolve(policy["PolicyDocument"])["Statement"]

    def can(action: str, arn: str) -> bool:
        return allows(statements, action, arn, resolve=lambda v: v)

    assert can("s3:GetObject", f"arn:aws:s3:::{bucket}/incoming/cup.png")
    assert can("s3:GetObject", f"arn:aws:s3:::{bucket}/incoming/summer/cup.png")
    assert can("s3:PutObject", f"arn:aws:s3:::{bucket}/generated/cup/0123/variant-1.jpeg")
    # Renditions: Claid reads the variant it wrote (a storage:// input) and writes each rendition beside it.
    assert can("s3:GetObject", f"arn:aws:s3:::{bucket}/generated/cup/0123/variant-1.jpeg")
    assert can("s3:PutObject", f"arn:aws:s3:::{bucket}/generated/cup/0123/renditions/1-2048x2048-crop.jpeg")
    for action, key in [
        ("s3:GetObject", "published/cup.png/1.jpeg"),  # no reading what is published
        ("s3:PutObject", "published/cup.png/1-2048.jpeg"),  # a late edit could land over a newer choice's rendition
        ("s3:PutObject", "incoming/cup.png"),  # writing here would start the pipeline
        ("s3:PutObject", "published/cup.png/1.jpeg"),
        ("s3:DeleteObject", "incoming/cup.png"),
        ("s3:DeleteObject", "generated/cup/0123/variant-1.jpeg"),
        ("s3:GetObjectVersion", "incoming/cup.png"),
        ("s3:PutObjectAcl", "generated/cup/0123/variant-1.jpeg"),
    ]:
        assert not can(action, f"arn:aws:s3:::{bucket}/{key}"), f"{action} on {key}"
    for other in (f"{bucket}-evil", "another-shop-bucket"):
        assert not can("s3:GetObject", f"arn:aws:s3:::{other}/incoming/cup.png")
        assert not can("s3:PutObject", f"arn:aws:s3:::{other}/generated/x.png")
    assert not can("s3:ListBucket", f"arn:aws:s3:::{bucket}")
    assert {s["Action"] for s in statements} == {"s3:GetObject", "s3:PutObject"}  # no wildcards, no other service
    # What the local stack deployed is that policy.
    iam = stack.client("iam")
    user = stack.physical["ClaidConnectorUser"]
    [name] = iam.list_user_policies(UserName=user)["PolicyNames"]
    deployed = iam.get_user_policy(UserName=user, PolicyName=name)["PolicyDocument"]
    assert (json.loads(deployed) if isinstance(deployed, str) else deployed)["Statement"] == statements


def test_connect_storage_registers_the_stacks_key_with_claid(connected: Pipeline, capsys):
    stack = connected.stack
    assert main(["connect-storage", "--stack", "backdrop-local", "--name", "shop"]) == 0
    out = capsys.readouterr()
    answer = json.loads(out.out)
    key_id = stack.physical["ClaidConnectorAccessKey"]
    assert answer["name"] == "shop" and answer["parameters"]["bucket"] == connected.bucket
    secret = stack.attributes[("ClaidConnectorAccessKey", "SecretAccessKey")]
    assert secret not in out.out + out.err
    connector = stack.emulator.connectors.get("shop")
    assert connector is not None and (connector.access_key, connector.secret_access_key) == (key_id, secret)
    assert "sam deploy --stack-name backdrop-local --parameter-overrides ClaidStorageName=shop" in out.err


def test_connect_storage_needs_the_connector_user(pipeline: Pipeline, capsys):
    pipeline.stack.publish()
    assert main(["connect-storage", "--stack", "backdrop-local"]) == 2
    assert "CreateClaidConnectorUser=true" in capsys.readouterr().err
    assert main(["connect-storage", "--stack", "no-such-stack"]) == 2
    assert "no stack named 'no-such-stack'" in capsys.readouterr().err
