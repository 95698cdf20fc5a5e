"""The guard around the credit-spending step (backdrop.once) on DynamoDB (moto in-process), and clients made on
first use (backdrop.clients)."""

from __future__ import annotations

import threading

import boto3
import pytest
from backdrop.claid.client import Deadline
from backdrop.clients import Clients, Lazy, on_first_use
from backdrop.once import InProgressElsewhere, Once
from moto import mock_aws
from pydantic import BaseModel

TABLE = "idempotency"


class Item(BaseModel):
    job_id: str


class Outcome(BaseModel):
    job_id: str
    run: int


@pytest.fixture(autouse=True)
def region(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # a session made earlier read an environment without these


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "backdrop-prod-ProcessorFunction")
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def guarded(dynamodb, step) -> Once[Item, Outcome]:
    return Once(
        step,
        key="job_id",
        outcome=Outcome,
        table_name=TABLE,
        dynamodb=dynamodb,
        ttl_seconds=3600,
        stored_as="generate_once",
    )


LATER = Deadline(lambda: 500.0, reserve_seconds=0)


def test_a_step_runs_once_per_key_and_a_redelivery_gets_the_stored_outcome(dynamodb):
    runs: list[str] = []

    def step(item: Item, deadline: Deadline) -> Outcome:
        runs.append(item.job_id)
        return Outcome(job_id=item.job_id, run=len(runs))

    once = guarded(dynamodb, step)
    first = once(Item(job_id="j1"), LATER)
    assert once(Item(job_id="j1"), LATER) == first == Outcome(job_id="j1", run=1)
    assert once(Item(job_id="j2"), LATER).run == 2 and runs == ["j1", "j2"]


def test_outcomes_are_stored_under_the_key_the_handlers_used_so_older_ones_still_answer(dynamodb):
    guarded(dynamodb, lambda item, _: Outcome(job_id=item.job_id, run=1))(Item(job_id="j1"), LATER)
    [stored] = dynamodb.scan(TableName=TABLE)["Items"]
    # Powertools' prefix, as it was when the guard was a function named generate_once in functions/processor/handler.py
    assert stored["id"]["S"].startswith("backdrop-prod-ProcessorFunction.handler.generate_once#")


def test_a_forgotten_outcome_runs_the_step_again(dynamodb):
    runs: list[int] = []
    once = guarded(dynamodb, lambda item, _: Outcome(job_id=item.job_id, run=runs.append(1) or len(runs)))
    once(Item(job_id="j1"), LATER)
    once.forget(Item(job_id="j1"))
    assert once(Item(job_id="j1"), LATER).run == 2


def test_a_step_running_elsewhere_is_reported_as_such(dynamodb):
    inner: list[Once[Item, Outcome]] = []

    def step(item: Item, deadline: Deadline) -> Outcome:
        with pytest.raises(InProgressElsewhere):  # the same key while its first run holds the lock
            inner[0](item, deadline)
        return Outcome(job_id=item.job_id, run=1)

    inner.append(guarded(dynamodb, step))
    assert inner[0](Item(job_id="j1"), LATER).run == 1


def test_clients_are_made_on_first_use_only(monkeypatch: pytest.MonkeyPatch):
    made: list[str] = []
    make = boto3.client
    monkeypatch.setattr(boto3, "client", lambda service, **kw: made.append(service) or make(service, **kw))
    clients = Clients()
    sqs = clients.sqs  # a stand-in: nothing made yet
    assert made == []
    assert sqs.meta.service_model.service_name == "sqs"
    assert clients.sqs.meta.region_name == "us-east-1"  # the same client, not a second one
    assert made == ["sqs"]
    Clients().warm("s3", "events")
    assert made == ["sqs", "s3", "events"]


def test_a_value_made_while_making_another_does_not_wait_for_itself():
    """The Claid client is made on first use and reads the API key through a provider made on first use."""
    provider = on_first_use(lambda: {"key": "secret"})
    client = Lazy(lambda: "client with " + provider.get("key"))
    done: list[str] = []
    thread = threading.Thread(target=lambda: done.append(client.get()), daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert done == ["client with secret"]
