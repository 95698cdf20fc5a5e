"""Every AWS call the handlers really make is granted by their roles, as the SAM transform generates them.

The runner records each call a handler makes (service, operation, parameters) while the pipeline runs for
real; each is turned into the IAM action(s) and resource ARN it needs and checked against the statements of
the function's role in the transformed template (the roles the local stack creates in moto)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from backdrop_kit.emulator import EmulatorConfig
from backdrop_kit.runner import API_CALLS, ApiCall, sqs_event
from backdrop_kit.stack import ACCOUNT, REGION, LocalStack
from backdrop_kit.template import allows

from .conftest import Pipeline
from .test_publishing import select

TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def needed(call: ApiCall) -> list[tuple[str, str]]:
    p = call.params
    if call.service == "s3":
        if call.operation == "ListObjectsV2":
            return [("s3:ListBucket", f"arn:aws:s3:::{p['Bucket']}")]
        arn = f"arn:aws:s3:::{p['Bucket']}/{p['Key']}"
        if call.operation == "CopyObject":
            source = p["CopySource"]  # botocore has made it "bucket/key" (URL-encoded) by then
            path = unquote(source) if isinstance(source, str) else f"{source['Bucket']}/{source['Key']}"
            return [("s3:PutObject", arn), ("s3:GetObject", f"arn:aws:s3:::{path.split('?')[0]}")]
        if call.operation in ("HeadObject", "GetObject"):
            return [("s3:GetObject", arn)] + ([("s3:GetObjectVersion", arn)] if p.get("VersionId") else [])
        return [(f"s3:{call.operation}", arn)]
    if call.service == "dynamodb":
        table = lambda name: f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"  # noqa: E731
        if call.operation == "TransactWriteItems":
            return [
                (f"dynamodb:{TRANSACT_ACTIONS[kind]}", table(body["TableName"]))
                for item in p["TransactItems"]
                for kind, body in item.items()
            ]
        return [(f"dynamodb:{call.operation}", table(p["TableName"]))]
    if call.service == "events":
        return [
            ("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{e['EventBusName']}")
            for e in p["Entries"]
        ]
    if call.service == "sns":
        return [(f"sns:{call.operation}", p["TopicArn"])]
    if call.service == "secretsmanager":
        return [(f"secretsmanager:{call.operation}", p["SecretId"])]
    if call.service == "ssm":
        return [(f"ssm:{call.operation}", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{p['Name']}")]
    if call.service == "sqs":
        name = p.get("QueueName") or p["QueueUrl"].rsplit("/", 1)[-1]
        return [(f"sqs:{call.operation}", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")]
    raise AssertionError(f"no IAM mapping for {call.service}:{call.operation}: add one to this test")


def check(stack: LocalStack, calls: list[ApiCall]) -> set[tuple[str, str]]:
    functions = stack.template.functions()
    seen = set()
    for call in calls:
        statements = functions[call.function_id].policy_statements
        for action, arn in needed(call):
            seen.add((call.function_id, action))
            assert allows(statements, action, arn, resolve=stack.resolve), (
                f"{call.function_id} calls {call.service}:{call.operation} but template.yaml does not allow "
                f"{action} on {arn}"
            )
    return seen


def test_the_template_grants_every_call_the_handlers_make(make_pipeline):
    API_CALLS.clear()
    # Connected storage, a profile from SSM, a rejection, and a rate limit that hands a message back.
    p: Pipeline = make_pipeline(emulator=EmulatorConfig(fault_rate=1.0, fault_kinds=("429",)))
    p.stack.put_profile("summer", {"number_of_images": 1})
    p.upload("incoming/summer/cup.png")
    p.upload("incoming/notes.png", b"not an image")
    queue = p.stack.queue_url("JobsQueue")
    messages: list[dict[str, Any]] = []
    while not any("summer" in m["Body"] for m in messages):
        messages += p.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
            "Messages", []
        )
    photo = next(m for m in messages if "summer" in m["Body"])
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue.rsplit('/', 1)[-1]}"
    p.runner.invoke("ProcessorFunction", sqs_event([photo], queue_arn))
    p.stack.emulator.set_faults(0.0)
    p.drain()
    seen = check(p.stack, list(API_CALLS))
    API_CALLS.clear()
    # Temporary-bucket mode: the recorder copies images into generated/, the renditions function its rendition.
    t: Pipeline = make_pipeline("temporary")
    t.upload(
        "incoming/vase.png",
        metadata={"backdrop-number-of-images": "1", "backdrop-publish": "first", "backdrop-renditions": "200 webp"},
    )
    t.drain()
    t.s3.head_object(Bucket=t.bucket, Key="published/vase.png/1-200.webp")
    seen |= check(t.stack, list(API_CALLS))
    API_CALLS.clear()
    # Publishing: a policy publishes two variants with a rendition each (Claid's image edit, through the connector),
    # then a storefront's command replaces them with one (the record says which keys to remove: nothing is listed,
    # so neither the publisher nor the renditions function has s3:ListBucket).
    pub: Pipeline = make_pipeline()
    pub.upload(
        "incoming/vase.png",
        metadata={"backdrop-number-of-images": "2", "backdrop-publish": "all", "backdrop-renditions": "200 webp"},
    )
    pub.drain()
    job_id = pub.jobs()["incoming/vase.png"]["job_id"]
    select(pub, {"job_id": job_id, "variants": [2]})
    pub.drain()
    assert pub.s3.list_objects_v2(Bucket=pub.bucket, Prefix="published/")["KeyCount"] == 2  # an image, a rendition
    seen |= check(pub.stack, list(API_CALLS))

    expected = {
        ("ProcessorFunction", "s3:GetObject"),
        ("ProcessorFunction", "secretsmanager:GetSecretValue"),
        ("ProcessorFunction", "ssm:GetParameter"),
        ("ProcessorFunction", "dynamodb:PutItem"),
        ("ProcessorFunction", "events:PutEvents"),
        ("ProcessorFunction", "sqs:ChangeMessageVisibility"),
        ("RecorderFunction", "s3:PutObject"),
        ("RecorderFunction", "sns:Publish"),
        ("RecorderFunction", "dynamodb:UpdateItem"),
        ("RecorderFunction", "events:PutEvents"),
        ("PublisherFunction", "dynamodb:GetItem"),
        ("PublisherFunction", "dynamodb:PutItem"),
        ("PublisherFunction", "dynamodb:UpdateItem"),
        ("PublisherFunction", "s3:GetObject"),
        ("PublisherFunction", "s3:PutObject"),
        ("PublisherFunction", "s3:DeleteObject"),
        ("PublisherFunction", "events:PutEvents"),
        ("RenditionsFunction", "secretsmanager:GetSecretValue"),
        ("RenditionsFunction", "s3:GetObject"),
        ("RenditionsFunction", "s3:PutObject"),
        ("RenditionsFunction", "dynamodb:GetItem"),
        ("RenditionsFunction", "dynamodb:PutItem"),
        ("RenditionsFunction", "dynamodb:UpdateItem"),
        ("RenditionsFunction", "dynamodb:DeleteItem"),
        ("RenditionsFunction", "events:PutEvents"),
    }
    assert expected <= seen, f"the scenario did not exercise {expected - seen}"
    # The publisher's role (as the SAM transform generated it) grants exactly what its handler calls, plus
    # the one statement Lambda itself uses: sending a failed invocation to the OnFailure queue, PublisherDLQ.
    statements = p.stack.template.functions()["PublisherFunction"].policy_statements
    granted = {
        action
        for statement in statements
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert granted == {action for function_id, action in seen if function_id == "PublisherFunction"} | {
        "sqs:SendMessage"
    }
    [send] = [s for s in statements if "sqs:SendMessage" in json.dumps(s["Action"])]
    assert send["Resource"] == {"Fn::GetAtt": ["PublisherDLQ", "Arn"]}


def test_processor_is_not_allowed_to_write_or_touch_everything():
    from backdrop_kit.template import load_template

    template = load_template()
    processor = template.functions()["ProcessorFunction"].policy_statements
    identity = lambda v: v  # noqa: E731 - statements compared unresolved: no wildcard resource anywhere
    for statement in processor + template.functions()["RecorderFunction"].policy_statements:
        assert statement.get("Resource") != "*"
    assert not allows(processor, "s3:PutObject", "arn:aws:s3:::any/generated/x.jpeg", resolve=identity)


def test_the_publisher_writes_only_published_images():
    from backdrop_kit.template import load_template

    publisher = load_template().functions()["PublisherFunction"].policy_statements
    identity = lambda v: v  # noqa: E731
    bucket = "arn:aws:s3:::${AWS::Partition}"  # unresolved: compare the prefixes the statements name
    for statement in publisher:
        assert statement.get("Resource") != "*"
    text = json.dumps(publisher)
    for action in ("s3:PutObject", "s3:DeleteObject"):
        [statement] = [s for s in publisher if action in s["Action"]]
        assert "${PublishedPrefix}*" in json.dumps(statement["Resource"])
        assert "${IncomingPrefix}" not in json.dumps(statement) and "${GeneratedPrefix}" not in json.dumps(statement)
    assert "${IncomingPrefix}" not in text  # never reads or writes uploads
    assert not allows(publisher, "sns:Publish", bucket, resolve=identity)
