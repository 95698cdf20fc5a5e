"""The local stack is made from template.yaml: every resource there exists locally, or is one of the few kinds
that have no local meaning (and each of those is named here, so a new kind fails until someone decides)."""

from __future__ import annotations

import pytest
from backdrop_kit.stack import LocalStack

NOT_EMULATED = {
    "AWS::Serverless::LayerVersion": "the layer is the installed `backdrop` package locally",
    "AWS::SQS::QueuePolicy": "moto does not enforce resource policies",
    "AWS::S3::BucketPolicy": "moto does not enforce resource policies; the local stack speaks plain HTTP",
    "AWS::SNS::TopicPolicy": "moto does not enforce resource policies",
    "AWS::SNS::Subscription": "an e-mail subscription; the local stack subscribes its own queue instead",
    "AWS::CloudWatch::Alarm": "no metrics locally; DLQ depth is asserted by the tests instead",
    "AWS::CloudWatch::Dashboard": "no metrics locally; tests/template checks what it shows",
    "AWS::KMS::Key": "the local topic is not encrypted",
}


@pytest.mark.parametrize(
    "parameters",
    [{}, {"WebhookUrl": "https://shop.example/hook", "CreateClaidConnectorUser": "true"}],
    ids=["default", "every-option"],
)
def test_every_template_resource_exists_locally(make_pipeline, parameters):
    stack: LocalStack = make_pipeline(parameters=parameters).stack
    conditional = {k for k, r in stack.template.raw["Resources"].items() if "Condition" in r}
    assert bool(conditional & {"WebhookRule", "ClaidConnectorUser"}) == bool(parameters)
    for logical_id, resource in stack.template.raw["Resources"].items():
        kind = resource["Type"]
        if kind in NOT_EMULATED:
            continue
        assert logical_id in stack.physical, f"{logical_id} ({kind}) from template.yaml is not in the local stack"


def test_functions_are_fed_as_the_template_says(pipeline):
    stack: LocalStack = pipeline.stack
    fed = {(s.function_id, s.kind) for s in stack.sources}
    assert fed == {
        ("ProcessorFunction", "sqs"),
        ("RecorderFunction", "eventbridge"),
        ("PublisherFunction", "eventbridge"),
    }
    [jobs] = [s for s in stack.sources if s.kind == "sqs"]
    assert jobs.queue_url == stack.queue_url("JobsQueue") and jobs.batch_size == 10
    # The runner starts as many processor instances as the event source's MaximumConcurrency allows.
    assert jobs.max_concurrency == int(stack.parameters["ProcessorMaxConcurrency"]) == 5
    assert len(pipeline.runner._workers["ProcessorFunction"]) == jobs.max_concurrency
    [recorder] = [s for s in stack.sources if s.function_id == "RecorderFunction"]
    assert recorder.dead_letter_url == stack.queue_url("RecorderDLQ")
    publisher = [s for s in stack.sources if s.function_id == "PublisherFunction"]
    assert len(publisher) == 2  # recorded generations, and storefront commands
    assert {s.dead_letter_url for s in publisher} == {stack.queue_url("PublisherDLQ")}


def test_local_queues_keep_the_template_redrive(pipeline):
    attrs = pipeline.sqs.get_queue_attributes(
        QueueUrl=pipeline.stack.queue_url("JobsQueue"), AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    assert '"maxReceiveCount": 10' in attrs["RedrivePolicy"] or '"maxReceiveCount": "10"' in attrs["RedrivePolicy"]
