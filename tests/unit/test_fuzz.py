"""Property-based: whatever an uploader, a profile author, S3/SQS/EventBridge or Claid hands the processor and
the recorder's logic, nothing raises unhandled, every upload under the incoming prefix ends in exactly one
published outcome (or a hand-back that holds nothing), and a rejected upload never holds or spends credits."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import httpx
import pytest
from backdrop.claid.client import ClaidClient
from backdrop.events import GenerationDetail
from backdrop.handback import HandBack
from backdrop.limits import MAX_METADATA_VALUE_CHARS, check_metadata, check_profile_document, check_profile_name
from backdrop.once import RunsEveryTime
from backdrop.processing import Processor, profile_loader
from backdrop.settings import SETTING_NAMES
from backdrop.uploads import MalformedMessage, Upload, UploadRejected, uploads_from_message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_claid_client import OK
from .test_processor_rules import CONFIG, FakeLedger, deadline

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 56
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class FakeS3:
    def __init__(self, head: bytes, size: int, metadata: dict[str, str]) -> None:
        self.head, self.size, self.metadata = head, size, metadata
        self.calls = 0

    def head_object(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        return {"ContentLength": self.size, "Metadata": self.metadata, "ETag": '"e1"', "VersionId": "v1"}

    def get_object(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        return {"Body": io.BytesIO(self.head)}

    def generate_presigned_url(self, *_: Any, **__: Any) -> str:
        return "https://bucket.s3.amazonaws.com/incoming/x.png?X-Amz-Signature=abc"

    def get_paginator(self, _: str) -> FakeS3:
        return self

    def paginate(self, **_: Any) -> list[dict[str, Any]]:
        return [{"Contents": []}]


class FakeEvents:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries += Entries
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}


class FakeSSM:
    def __init__(self, document: str | None) -> None:
        self.document = document

    def get(self, name: str, max_age: int = 0) -> str:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        if self.document is None:
            raise GetParameterError("ParameterNotFound")
        return self.document


# --- strategies ----------------------------------------------------------------------------------------
texts = st.text(max_size=60)
finite = st.floats(allow_nan=False, allow_infinity=False)  # JSON has no NaN or infinity
json_scalars = st.none() | st.booleans() | st.integers(-10, 10) | finite | texts
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3), max_leaves=8
)
setting_names = st.sampled_from([*sorted(SETTING_NAMES), "profile", "unknown_thing"])
metadata = st.dictionaries(
    st.builds(lambda n: "backdrop-" + n.replace("_", "-"), setting_names) | texts,
    texts
    | st.sampled_from(["1", "2", "4", "9", "png", "true", "a red wall", "x" * 3000])
    # RFC 2047 as S3 returns non-ASCII metadata, and as it could be malformed by an uploader
    | st.sampled_from(
        ["=?UTF-8?B?w7w=?=", "=?UTF-8?Q?a=0Ab?=", "=?UTF-8?B?bad!?=", "=?x-none?Q?a?=", "=?UTF-8?Q?=FF?="]
    ),
    max_size=4,
)
profile_documents = (
    st.none()
    | json_values.map(json.dumps)
    | st.dictionaries(setting_names, json_scalars, max_size=4).map(json.dumps)
    | texts
)
keys = st.one_of(
    texts,
    st.builds(lambda rest: "incoming/" + rest, texts),
    st.builds(lambda folder, rest: f"incoming/{folder}/{rest}", texts, texts),
    st.sampled_from(["generated/x/1.jpeg", "incoming/", "incoming/../x.png", "incoming/a b+c%2B.png"]),
)
heads = st.sampled_from([PNG, b"\xff\xd8\xff" + b"\x00" * 61, b"not an image", b""]) | st.binary(max_size=64)
claid_answers = st.one_of(
    st.just(httpx.Response(200, json=OK)),
    st.builds(
        lambda status, body: httpx.Response(status, json=body),
        st.sampled_from([200, 400, 401, 402, 403, 404, 409, 422, 429, 500, 503]),
        json_values,
    ),
    st.builds(lambda raw: httpx.Response(200, content=raw), st.binary(max_size=40)),
    st.just(httpx.ReadTimeout("no answer")),
    st.just(httpx.ConnectError("refused")),
)


def claid_for(answer: Any) -> ClaidClient:
    def handle(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    return ClaidClient(
        "secret-key",
        http=httpx.Client(transport=httpx.MockTransport(handle)),
        sleep=lambda _: None,
        jitter=lambda: 0.0,
        max_attempts=2,
        call_budget=10.0,
    )


@FAST
@given(
    key=keys,
    meta=metadata,
    document=profile_documents,
    head=heads,
    size=st.integers(-1, 30_000_000),
    answer=claid_answers,
)
def test_every_upload_ends_in_one_outcome_and_rejections_cost_nothing(key, meta, document, head, size, answer):
    s3, events, ledger = FakeS3(head, size, meta), FakeEvents(), FakeLedger()
    calls: list[Any] = []
    client = claid_for(answer)
    p = Processor(
        config=CONFIG,
        s3=s3,
        events=events,
        reservations=ledger,  # type: ignore[arg-type]
        load_profile=profile_loader(FakeSSM(document), "/backdrop/test/profiles/"),
        claid=lambda: calls.append(1) or client,  # type: ignore[func-returns-value]
        guard=RunsEveryTime,
    )
    upload = Upload("shop", key, version_id="v1")
    try:
        outcome = p.handle(upload, deadline(600))
    except UploadRejected as exc:
        # Only keys that are not uploads at all (our own output, folder markers), before anything was read.
        outside = not key.startswith(CONFIG.incoming_prefix)
        assert (exc.reason, outside) in {("outside_incoming_prefix", True), ("not_a_file", False)}
        assert exc.reason != "not_a_file" or key.endswith("/")
        assert s3.calls == 0 and events.entries == [] and ledger.held == {}
        return
    if isinstance(outcome, HandBack):
        assert events.entries == [] and ledger.held == {}  # back to the queue holding nothing
        return
    assert isinstance(outcome, GenerationDetail)
    assert len(events.entries) == 1 and json.loads(events.entries[0]["Detail"])["job_id"] == outcome.job_id
    if outcome.status == "rejected":
        assert calls == [] and ledger.held == {} and outcome.credits.used == 0 and outcome.problem is not None
    if outcome.status == "succeeded":
        assert outcome.credits.used == 2 * outcome.images


sqs_bodies = st.one_of(
    texts,
    json_values.map(json.dumps),
    st.builds(
        lambda records: json.dumps({"Records": records}),
        st.lists(
            st.fixed_dictionaries(
                {"eventName": st.sampled_from(["ObjectCreated:Put", "ObjectRemoved:Delete"]) | texts},
                optional={
                    "s3": st.fixed_dictionaries(
                        {
                            "bucket": st.fixed_dictionaries({"name": texts}),
                            "object": st.dictionaries(
                                st.sampled_from(["key", "versionId", "eTag", "size"]), json_scalars
                            ),
                        }
                    )
                    | json_values
                },
            ),
            max_size=3,
        ),
    ),
)


@FAST
@given(body=sqs_bodies)
def test_any_queue_message_is_uploads_or_a_malformed_message(body):
    try:
        uploads = uploads_from_message(body)
    except MalformedMessage:
        return
    assert all(isinstance(u.key, str) and isinstance(u.bucket, str) for u in uploads)


@FAST
@given(event=st.dictionaries(st.sampled_from(["source", "detail-type", "detail"]), json_values))
def test_any_bus_event_detail_either_validates_or_is_refused_cleanly(event):
    from pydantic import ValidationError

    with contextlib.suppress(ValidationError):  # refused: EventBridge retries, then the recorder DLQ keeps it
        GenerationDetail.model_validate(event.get("detail"))


@FAST
@given(value=st.text(max_size=3000))
def test_metadata_limits_name_the_problem(value):
    try:
        check_metadata({"backdrop-prompt": value})
    except UploadRejected as exc:
        assert exc.reason == "bad_metadata" and "backdrop-prompt" in exc.message
        assert len(value) > MAX_METADATA_VALUE_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in value)
    else:
        assert len(value) <= MAX_METADATA_VALUE_CHARS


@pytest.mark.parametrize("name", ["", "../other", "a/b", "x" * 65, "sum mer", "*", "naïve"])
def test_profile_names_outside_the_pattern_are_refused(name):
    with pytest.raises(UploadRejected, match="profile name") as caught:
        check_profile_name(name)
    assert caught.value.reason == "bad_profile"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"prompt": {"nested": 1}}, "string, number or boolean"),
        ({"prompt": "a\nb"}, "control characters"),
        ({"prompt": "x" * 2049}, "at most 2048"),
        ([1, 2], "not a JSON object"),
        ({f"f{i}": 1 for i in range(65)}, "at most 64"),
    ],
)
def test_profile_documents_have_limits(document, message):
    with pytest.raises(UploadRejected, match=message):
        check_profile_document("summer", json.dumps(document), document)
