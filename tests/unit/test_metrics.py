"""The processor's measures (Claid latency and statuses, retries, rejections, credits) and how they become EMF."""

from __future__ import annotations

import json
import threading
from decimal import Decimal

import httpx
import pytest
from aws_lambda_powertools import Metrics
from backdrop.claid.errors import ClaidCallNotStarted, ClaidError, ClaidOutcomeUnknown, ClaidRateLimited
from backdrop.measures import Measures, collecting, emit, measure
from backdrop.store.reservations import Reservation

from .test_claid_client import OK, REQUEST, client_for
from .test_processor_rules import FakeClaid, FakeLedger, deadline, job, processor


def test_client_measures_each_attempt_its_status_latency_and_the_retry():
    client, calls = client_for(
        [
            httpx.Response(429, json={"detail": {"error_code": "2001"}}, headers={"Retry-After": "1"}),
            httpx.Response(200, json=OK),
        ]
    )
    with collecting() as measures:
        client.create_scene(REQUEST, deadline(600))
    assert len(calls) == 2
    assert measures.total("ClaidCalls", ("Status", "429")) == 1
    assert measures.total("ClaidCalls", ("Status", "200")) == 1
    assert measures.total("ClaidRetries") == 1
    latencies = measures.named("ClaidLatency")
    assert len(latencies) == 2 and all(m.unit == "Milliseconds" and m.value >= 0 for m in latencies)


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (httpx.ReadTimeout("slow"), "no_answer"),
        (httpx.Response(200, json={"not": "a scene"}), "200"),
    ],
)
def test_client_counts_unknown_outcomes(answer, status):
    client, _ = client_for([answer])
    with collecting() as measures, pytest.raises(ClaidOutcomeUnknown):
        client.create_scene(REQUEST, deadline(600))
    assert measures.total("ClaidOutcomeUnknown") == 1
    assert measures.total("ClaidCalls", ("Status", status)) == 1


@pytest.mark.parametrize("status", [401, 402, 403])
def test_client_counts_auth_and_credit_answers_by_status(status):
    client, _ = client_for([httpx.Response(status, json={"error_code": "111", "error_message": "no"})])
    with collecting() as measures, pytest.raises(ClaidError):
        client.create_scene(REQUEST, deadline(600))
    assert measures.total("ClaidCalls", ("Status", str(status))) == 1
    assert measures.total("ClaidRetries") == 0


def test_credits_reserved_then_released_when_the_job_goes_back():
    ledger = FakeLedger()
    with collecting() as measures, pytest.raises(ClaidCallNotStarted):
        processor(claid=FakeClaid(ClaidCallNotStarted("late", retry_after=3.0)), ledger=ledger).generate(
            job(2), deadline(600)
        )
    assert measures.total("CreditsReserved") == 4 and measures.total("CreditsReleased") == 4


def test_an_unanswered_call_is_reserved_and_not_released():
    with collecting() as measures:
        processor(claid=FakeClaid(ClaidOutcomeUnknown("no answer"))).generate(job(1), deadline(600))
    assert measures.total("CreditsReserved") == 2 and measures.named("CreditsReleased") == []


class BudgetLedger(FakeLedger):
    budget = Decimal(10)

    def reserve(self, job_id: str, month: str, credits: Decimal) -> Reservation:
        return Reservation("reserved", credits, month, Decimal(8))


def test_budget_committed_percent_follows_each_reservation():
    with collecting() as measures, pytest.raises(ClaidRateLimited):
        processor(claid=FakeClaid(ClaidRateLimited("x", status=429)), ledger=BudgetLedger()).generate(
            job(1), deadline(600)
        )
    [percent] = measures.named("BudgetCommittedPercent")
    assert (percent.unit, percent.value) == ("Percent", 80.0)


def test_nothing_is_collected_outside_a_record():
    measure("ClaidRetries")  # no error, and no list grows anywhere


def test_each_thread_collects_only_its_own_record():
    seen: dict[int, Measures] = {}

    def work(i: int) -> None:
        with collecting() as measures:
            for _ in range(i + 1):
                measure("ClaidRetries")
            seen[i] = measures

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {i: m.total("ClaidRetries") for i, m in seen.items()} == {i: i + 1 for i in range(8)}


def test_measures_become_emf_with_their_dimension(capsys, monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    metrics = Metrics(namespace="Backdrop", service="backdrop")
    metrics.clear_metrics()  # Metrics instances share one set; a disabled flush elsewhere leaves it full
    with collecting() as measures:
        measure("ClaidLatency", 1234.0, "Milliseconds")
        measure("ClaidCalls", dimension=("Status", "429"))
        measure("ClaidCalls", dimension=("Status", "429"))
        measure("UploadsRejected", dimension=("Reason", "not_an_image"))
    emit(metrics, measures)
    metrics.flush_metrics()
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    by_metric = {m["Name"]: d for d in documents for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert by_metric["ClaidCalls"]["Status"] == "429" and by_metric["ClaidCalls"]["ClaidCalls"] in (2.0, [2.0])
    assert sorted(by_metric["ClaidCalls"]["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == ["Status", "service"]
    assert by_metric["UploadsRejected"]["Reason"] == "not_an_image"
    assert by_metric["ClaidLatency"]["ClaidLatency"] in (1234.0, [1234.0])
    units = {m["Name"]: m["Unit"] for m in by_metric["ClaidLatency"]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units["ClaidLatency"] == "Milliseconds"


def test_nothing_is_printed_while_metrics_are_disabled(capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    with collecting() as measures:
        measure("ClaidCalls", dimension=("Status", "200"))
    emit(Metrics(namespace="Backdrop", service="backdrop"), measures)
    assert capsys.readouterr().out == ""


def test_with_metrics_disabled_nothing_is_kept_or_printed_however_many_invocations(monkeypatch, capsys):
    """Powertools prints a metric set that reaches 100 values even when metrics are disabled, and never clears it
    then: a kit command running 100 uploads printed an EMF document on its stdout."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics = Metrics(namespace="Backdrop", service="backdrop")
    for _ in range(150):
        with collecting() as measures:
            measure("CreditsReserved", 2.0)
            measure("Uploads", dimension=("Status", "succeeded"))
        emit(metrics, measures)
        metrics.flush_metrics()
    assert capsys.readouterr().out == ""
    assert metrics.metric_set == {}
