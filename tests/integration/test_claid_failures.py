"""Claid saying 4xx, 5xx, 402 or nothing at all: recorded, retried, or kept for later, never lost."""

from __future__ import annotations

import json
from decimal import Decimal

from backdrop_kit.emulator import EmulatorConfig
from backdrop_kit.redrive import redrive

from .conftest import Pipeline


def test_wrong_api_key_is_a_failed_job_with_claids_code_and_request_id(make_pipeline):
    p: Pipeline = make_pipeline(emulator=EmulatorConfig(api_keys=frozenset({"another-key"})))
    p.upload("incoming/cup.png")
    p.drain()
    job = p.jobs()["incoming/cup.png"]
    assert job["status"] == "failed" and job["reason"] == "claid_auth" and job["credits"] == 0
    detail = json.loads(job["detail"])
    assert detail["problem"]["claid_status"] == 401
    assert (detail["problem"]["claid_error_code"], detail["problem"]["claid_error_type"]) == ("111", "auth")
    assert detail["problem"]["message"] == "The API key is not valid."
    assert detail["problem"]["claid_request_id"] == p.scene_calls()[0].request_id
    assert "local-test-key" not in job["detail"]
    [note] = p.stack.notifications()
    assert note["attributes"]["status"] == "failed"
    total = p.stack.client("dynamodb")  # reservation released: nothing committed
    from backdrop.jobs import current_month
    from backdrop.store.ledger import DynamoLedger

    usage = DynamoLedger(total, p.stack.app_table).month_usage(current_month())["total"]
    assert usage["committed"] == 0 and usage["credits_reserved"] == 0


def test_transient_5xx_and_429_are_retried_to_success(make_pipeline):
    p: Pipeline = make_pipeline(emulator=EmulatorConfig(fault_rate=0.5, fault_kinds=("500", "429"), seed=3))
    for i in range(4):
        p.upload(f"incoming/cup-{i}.png", metadata={"backdrop-number-of-images": "1"})
    p.drain()
    jobs = p.jobs()
    assert {j["status"] for j in jobs.values()} == {"succeeded"} and len(jobs) == 4
    faults = [c for c in p.scene_calls() if c.fault]
    assert faults, "the seed should inject at least one fault"
    assert len(p.scene_calls(200)) == 4  # one charged call per job


SETTLE_QUICKLY = {"ClaidUnknownOutcomeSettleSeconds": "3"}


def _month_total(p: Pipeline) -> dict:
    from backdrop.jobs import current_month
    from backdrop.store.ledger import DynamoLedger

    return DynamoLedger(p.stack.client("dynamodb"), p.stack.app_table).month_usage(current_month())["total"]


def test_no_answer_before_claid_charged_settles_as_failed_with_nothing_charged(make_pipeline):
    p: Pipeline = make_pipeline(
        parameters=SETTLE_QUICKLY, emulator=EmulatorConfig(fault_rate=1.0, fault_kinds=("drop",))
    )
    p.upload("incoming/cup.png")
    p.drain()
    job = p.jobs()["incoming/cup.png"]
    assert job["status"] == "failed" and job["reason"] == "claid_outcome_unknown"
    assert "no image appeared" in job["reason_message"]
    assert len(p.scene_calls()) == 1  # never called twice, however often the message came back
    assert p.stack.emulator.stats()["credits_charged"] == 0
    total = _month_total(p)
    assert total["credits_used"] == 0 and total["committed"] == 0 and total["credits_reserved"] == 0


def test_answer_lost_after_claid_charged_is_reconciled_from_the_output_folder(make_pipeline):
    p: Pipeline = make_pipeline(
        parameters=SETTLE_QUICKLY, emulator=EmulatorConfig(fault_rate=1.0, fault_kinds=("lost",))
    )
    p.upload("incoming/cup.png", metadata={"backdrop-number-of-images": "3"})
    p.drain()
    job = p.jobs()["incoming/cup.png"]
    detail = json.loads(job["detail"])
    assert job["status"] == "succeeded" and detail["claid"]["reconciled"] is True
    assert [c.answered for c in p.scene_calls()] == [False]
    charged = p.stack.emulator.stats()["credits_charged"]
    assert charged == 6 and job["credits"] == charged and job["images"] == 3
    assert sorted(o["key"] for o in detail["outputs"]) == p.generated()
    total = _month_total(p)
    assert total["credits_used"] == charged and total["committed"] == charged and total["credits_reserved"] == 0


def test_answer_lost_in_temporary_mode_counts_the_credits_at_risk(make_pipeline):
    p: Pipeline = make_pipeline(
        "temporary", parameters=SETTLE_QUICKLY, emulator=EmulatorConfig(fault_rate=1.0, fault_kinds=("lost",))
    )
    p.upload("incoming/cup.png", metadata={"backdrop-number-of-images": "2"})
    p.drain()
    job = p.jobs()["incoming/cup.png"]
    detail = json.loads(job["detail"])
    assert job["status"] == "failed" and job["reason"] == "claid_outcome_unknown"
    assert detail["credits"]["at_risk"] == 4 and job["credits"] == 0
    assert len(p.scene_calls()) == 1
    total = _month_total(p)
    # Nothing can show what Claid did with it: at risk, and still counted against the budget.
    assert total["credits_at_risk"] == 4 and total["committed"] == 4 and total["credits_reserved"] == 0


def test_out_of_claid_credits_keeps_the_job_then_redrive_finishes_it(make_pipeline):
    p: Pipeline = make_pipeline(emulator=EmulatorConfig(credits=0))
    p.upload("incoming/cup.png", metadata={"backdrop-number-of-images": "1"})
    p.drain(timeout=180)
    assert p.jobs() == {}  # no terminal record yet: the job waits
    assert p.queue_depth("JobsDLQ") == 1
    alerts = [n for n in p.stack.notifications() if n["attributes"].get("kind") == "alert"]
    assert alerts and alerts[0]["attributes"]["alert"] == "claid_out_of_credits"

    p.stack.emulator.set_credits(None)
    moved = redrive(p.sqs, p.stack.queue_url("JobsDLQ"), p.stack.queue_url("JobsQueue"))
    assert moved == 1
    p.drain()
    job = p.jobs()["incoming/cup.png"]
    assert job["status"] == "succeeded" and job["credits"] == Decimal(2)


def test_tmp_url_from_a_host_not_allowed_is_kept_in_the_recorder_dlq(make_pipeline):
    # The recorder only downloads from the configured Claid hosts: here the emulator's 127.0.0.1 is not one.
    p: Pipeline = make_pipeline("temporary", parameters={"ClaidDownloadHosts": "*.claid.ai"})
    p.upload("incoming/cup.png", metadata={"backdrop-number-of-images": "1"})
    p.drain()
    assert p.jobs() == {}  # nothing recorded from an image that could not be kept
    dlq = p.stack.queue_url("RecorderDLQ")
    [message] = p.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    # Lambda's invocation record (the EventInvokeConfig OnFailure destination), once the retries are spent.
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    event = record["requestPayload"]
    assert event["detail-type"] == "Generation Succeeded"  # kept whole, to replay once the cause is fixed
    assert "refusing to download" in record["responsePayload"]["errorMessage"]
    assert "?" not in record["responsePayload"]["errorMessage"]  # no query strings in errors


def test_unreadable_api_key_keeps_the_job_and_holds_no_credits(make_pipeline):
    p: Pipeline = make_pipeline()
    secrets = p.stack.client("secretsmanager")
    secrets.delete_secret(SecretId=p.stack.physical["ClaidApiKeySecret"], ForceDeleteWithoutRecovery=True)
    p.upload("incoming/cup.png", metadata={"backdrop-number-of-images": "1"})
    p.drain(timeout=180)
    assert p.jobs() == {} and p.scene_calls() == []
    assert p.queue_depth("JobsDLQ") == 1  # kept for a redrive once the secret is back
    from backdrop.jobs import current_month
    from backdrop.store.ledger import DynamoLedger

    usage = DynamoLedger(p.stack.client("dynamodb"), p.stack.app_table).month_usage(current_month())["total"]
    assert usage["committed"] == 0 and usage["credits_reserved"] == 0
