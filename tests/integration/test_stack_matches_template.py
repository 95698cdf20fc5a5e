"""The local stack is what CloudFormation deploys: made from the SAM transform's output for template.yaml, every
resource there exists locally, or is one of the few kinds that have no local meaning (each named here, so a new
kind fails until someone decides)."""

from __future__ import annotations

import json

import pytest
from backdrop_kit.stack import LocalStack
from backdrop_kit.template import load_template

NOT_EMULATED = {
    "AWS::Lambda::LayerVersion": "the layer is the installed `backdrop` package locally",
    "AWS::Lambda::Permission": "moto does not enforce resource policies; the runner invokes the handlers itself",
    "AWS::SQS::QueuePolicy": "moto does not enforce resource policies",
    "AWS::S3::BucketPolicy": "moto does not enforce resource policies; the local stack speaks plain HTTP",
    "AWS::SNS::TopicPolicy": "moto does not enforce resource policies",
    "AWS::SNS::Subscription": "an e-mail subscription; the local stack subscribes its own queue instead",
    "AWS::CloudWatch::Alarm": "no metrics locally; DLQ depth is asserted by the tests instead",
    "AWS::CloudWatch::Dashboard": "no metrics locally; tests/template checks what it shows",
}


@pytest.mark.parametrize(
    "parameters",
    [{}, {"WebhookUrl": "https://shop.example/hook", "CreateClaidConnectorUser": "true"}],
    ids=["default", "every-option"],
)
def test_every_template_resource_exists_locally(make_pipeline, parameters):
    stack: LocalStack = make_pipeline(parameters=parameters).stack
    resources = stack.template.raw["Resources"]
    assert not [k for k, r in resources.items() if r["Type"].startswith("AWS::Serverless::")]  # transformed
    # The same transform, the same output: the stack holds exactly the deployed template's resources.
    deployed = load_template().transformed(
        {k: v for k, v in stack.parameters.items() if k in stack.template.parameters()}
    )
    assert set(resources) == set(deployed.for_parameters(stack.parameters).raw["Resources"])
    conditional = {k for k, r in resources.items() if "Condition" in r}
    assert bool(conditional & {"WebhookRule", "ClaidConnectorUser"}) == bool(parameters)
    for logical_id, resource in resources.items():
        kind = resource["Type"]
        if kind in NOT_EMULATED:
            continue
        assert logical_id in stack.physical, f"{logical_id} ({kind}) of the deployed template is not in the local stack"


def test_functions_are_fed_as_the_template_says(pipeline):
    stack: LocalStack = pipeline.stack
    fed = {(s.function_id, s.kind) for s in stack.sources}
    assert fed == {
        ("ProcessorFunction", "sqs"),
        ("RecorderFunction", "eventbridge"),
        ("PublisherFunction", "eventbridge"),
        ("RenditionsFunction", "sqs"),  # a rule puts Variants Published on its queue (moto delivers to queues)
    }
    [renditions] = [s for s in stack.sources if s.function_id == "RenditionsFunction"]
    assert renditions.queue_url == stack.queue_url("RenditionsQueue") and renditions.batch_size == 1
    assert renditions.report_batch_item_failures and renditions.max_concurrency == 2
    [jobs] = [s for s in stack.sources if s.function_id == "ProcessorFunction"]
    assert jobs.queue_url == stack.queue_url("JobsQueue") and jobs.batch_size == 1
    assert jobs.report_batch_item_failures
    # The runner starts as many processor instances as the event source's MaximumConcurrency allows.
    assert jobs.max_concurrency == int(stack.parameters["ProcessorMaxConcurrency"]) == 50
    assert pipeline.runner.instance_limit("ProcessorFunction") == jobs.max_concurrency
    # EventBridge's undeliverable events and Lambda's failed invocations both end in the function's own DLQ.
    [recorder] = [s for s in stack.sources if s.function_id == "RecorderFunction"]
    assert recorder.dead_letter_url == recorder.on_failure_url == stack.queue_url("RecorderDLQ")
    assert recorder.max_attempts == 3  # EventInvokeConfig: two retries
    publisher = [s for s in stack.sources if s.function_id == "PublisherFunction"]
    assert len(publisher) == 2  # recorded generations, and storefront commands
    assert {s.dead_letter_url for s in publisher} == {s.on_failure_url for s in publisher}
    assert {s.on_failure_url for s in publisher} == {stack.queue_url("PublisherDLQ")}


def test_local_queues_keep_the_template_redrive(pipeline):
    attrs = pipeline.sqs.get_queue_attributes(
        QueueUrl=pipeline.stack.queue_url("JobsQueue"), AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    assert '"maxReceiveCount": 10' in attrs["RedrivePolicy"] or '"maxReceiveCount": "10"' in attrs["RedrivePolicy"]


def test_function_roles_hold_the_statements_the_transform_generated(pipeline):
    stack: LocalStack = pipeline.stack
    iam = stack.client("iam")
    for function_id, spec in stack.template.functions(stack.parameters).items():
        role = stack.physical[spec.role_id]
        names = iam.list_role_policies(RoleName=role)["PolicyNames"]
        local = [
            statement
            for name in names
            for statement in iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]["Statement"]
        ]
        assert sorted(json.dumps(s, sort_keys=True) for s in local) == sorted(
            json.dumps(stack.resolve(s), sort_keys=True) for s in spec.policy_statements
        ), function_id
