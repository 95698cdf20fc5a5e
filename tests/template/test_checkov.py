"""checkov on what CloudFormation deploys (template.yaml after the SAM transform): every finding is fixed or skipped
next to its resource in template.yaml, with the reason, and every skip still skips a finding."""

from __future__ import annotations

import pytest
from backdrop_kit.checks import HOW_TO_SKIP, CheckovUnavailable, declared_skips, scan, without_reason
from backdrop_kit.template import load_template

TEMPLATE = load_template()


def test_checkov_finds_nothing_without_a_reason_next_to_its_resource():
    # One scan for every claim about it: checkov takes seconds to start, and pytest-xdist would run a module
    # fixture once per worker.
    try:
        result = scan(TEMPLATE)
    except CheckovUnavailable as exc:
        pytest.fail(str(exc))
    problems = result.problems()
    assert not problems, "\n".join([*problems, HOW_TO_SKIP])
    # ...and it read the whole stack: what SAM generated, and what only some deployments create (checkov would
    # leave out a resource whose Condition is false for the defaults).
    transformed = TEMPLATE.transformed().raw["Resources"]
    checked_types = set(result.scanned.values())
    assert {"AWS::Lambda::Function", "AWS::IAM::Role", "AWS::SQS::Queue", "AWS::S3::Bucket"} <= checked_types
    unscanned = {name for name, body in transformed.items() if body["Type"] in checked_types} - set(result.scanned)
    assert not unscanned, f"resources of types checkov checks were not scanned: {sorted(unscanned)}"
    assert any("Condition" in transformed[name] for name in result.scanned)


def test_sam_keeps_a_function_s_skips_on_the_lambda_function_only():
    # The skips stay next to the SAM function in template.yaml because the transform copies its Metadata onto the
    # AWS::Lambda::Function of the same logical id. The role it generates gets none, so it is scanned in full.
    transformed = TEMPLATE.transformed().raw["Resources"]
    functions = TEMPLATE.resources_of_type("AWS::Serverless::Function")
    skipping = {
        name: body["Metadata"]["checkov"] for name, body in functions.items() if "checkov" in body.get("Metadata", {})
    }
    assert skipping, "no function skips a check: this test has nothing to show"
    for name, skips in skipping.items():
        assert transformed[name]["Type"] == "AWS::Lambda::Function"
        assert transformed[name]["Metadata"]["checkov"] == skips
        role = transformed[f"{name}Role"]
        assert role["Type"] == "AWS::IAM::Role" and "Metadata" not in role


def test_a_skip_must_name_its_check_and_say_why():
    template = {
        "Resources": {
            "Explained": {
                "Type": "AWS::SQS::Queue",
                "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_27", "comment": "SSE-SQS"}]}},
            },
            "Silent": {"Type": "AWS::SQS::Queue", "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_27"}]}}},
            "Blank": {
                "Type": "AWS::SQS::Queue",
                "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_27", "comment": " "}]}},
            },
            "Placeholder": {
                "Type": "AWS::SQS::Queue",
                "Metadata": {"bridgecrew": {"skip": [{"id": "CKV_AWS_27", "comment": "No comment provided"}]}},
            },
            "Nameless": {"Type": "AWS::SQS::Queue", "Metadata": {"checkov": {"skip": [{"comment": "because"}]}}},
            "Plain": {"Type": "AWS::SQS::Queue", "Metadata": {"BuildMethod": "python3.13"}},
        }
    }
    assert len(list(declared_skips(template))) == 5
    assert {check.resource for check in without_reason(template)} == {"Silent", "Blank", "Placeholder", "Nameless"}
