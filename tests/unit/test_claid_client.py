"""The Claid client alone, with httpx's mock transport standing in for the network (unit tier only)."""

import httpx
import pytest
from backdrop.claid.client import ClaidClient, Deadline
from backdrop.claid.errors import (
    ClaidAuthError,
    ClaidCallNotStarted,
    ClaidError,
    ClaidOutcomeUnknown,
    ClaidOutOfCredits,
    ClaidRateLimited,
    ClaidRejected,
    ClaidUnavailable,
)
from backdrop.claid.limiter import StartSlot
from backdrop.claid.request import build_edit_request, build_scene_request
from backdrop.renditions import RenditionSpec
from backdrop.settings import Settings

REQUEST = build_scene_request(Settings(prompt="on a table", number_of_images=2), "https://e/x.png", None)
OK = {
    "data": {
        "input": {"width": 600, "height": 400},
        "output": [
            {
                "ext": "jpeg",
                "format": "JPEG",
                "mime": "image/jpeg",
                "width": 1024,
                "height": 1024,
                "tmp_url": "https://tmp.claid.ai/a.jpeg",
            }
        ]
        * 2,
    }
}


def client_for(responses, sleeps=None, **kwargs):
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        answer = responses[min(len(calls), len(responses)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    recorded = sleeps if sleeps is not None else []
    kwargs.setdefault("call_budget", 10.0)
    client = ClaidClient(
        "secret-key",
        base_url="https://api.claid.ai",
        http=httpx.Client(transport=httpx.MockTransport(handle)),
        sleep=recorded.append,
        jitter=lambda: 1.0,
        **kwargs,
    )
    return client, calls


def deadline(seconds=100.0):
    return Deadline(lambda: seconds, reserve_seconds=0)


def test_success_sends_bearer_key_to_documented_path():
    client, calls = client_for([httpx.Response(200, json=OK, headers={"x-request-id": "r1"})])
    result = client.create_scene(REQUEST, deadline())
    assert result.request_id == "r1" and len(result.response.data.output) == 2
    assert calls[0].url.path == "/v1-ea/scene/create"
    assert calls[0].headers["authorization"] == "Bearer secret-key"


def test_429_honours_retry_after_then_succeeds():
    sleeps = []
    client, _calls = client_for(
        [
            httpx.Response(
                429,
                json={"detail": {"error_code": "2001", "error_message": "slow down"}},
                headers={"Retry-After": "3", "RateLimit-Reset": "7"},
            ),
            httpx.Response(200, json=OK),
        ],
        sleeps,
    )
    result = client.create_scene(REQUEST, deadline())
    assert sleeps == [3.0] and result.attempts == 2 and result.retried == ["429"]


def test_429_without_retry_after_uses_ratelimit_reset():
    sleeps = []
    client, _ = client_for(
        [httpx.Response(429, headers={"RateLimit-Reset": "2"}), httpx.Response(200, json=OK)], sleeps
    )
    client.create_scene(REQUEST, deadline())
    assert sleeps == [2.0]


def test_429_longer_than_the_time_left_is_handed_back_with_its_wait():
    client, calls = client_for([httpx.Response(429, headers={"RateLimit-Reset": "60"})])
    with pytest.raises(ClaidRateLimited) as err:
        client.create_scene(REQUEST, deadline(20))
    assert err.value.retry_after == 60 and len(calls) == 1


def test_5xx_backs_off_exponentially_then_gives_up():
    sleeps = []
    client, calls = client_for([httpx.Response(503, headers={"x-request-id": "r5"})], sleeps, max_attempts=4)
    with pytest.raises(ClaidUnavailable) as err:
        client.create_scene(REQUEST, deadline())
    assert sleeps == [0.5, 1.0, 2.0] and len(calls) == 4
    assert err.value.request_id == "r5" and err.value.attempts == 4


def test_connect_errors_are_retried():
    client, _calls = client_for([httpx.ConnectError("refused"), httpx.Response(200, json=OK)])
    assert client.create_scene(REQUEST, deadline()).attempts == 2


@pytest.mark.parametrize("exc", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped")])
def test_no_answer_after_sending_is_never_retried(exc):
    client, calls = client_for([exc, httpx.Response(200, json=OK)])
    with pytest.raises(ClaidOutcomeUnknown):
        client.create_scene(REQUEST, deadline())
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, ClaidRejected),
        (401, ClaidAuthError),
        (403, ClaidAuthError),
        (402, ClaidOutOfCredits),
        (404, ClaidRejected),
        (409, ClaidRejected),
        (422, ClaidRejected),
    ],
)
def test_status_maps_to_error_class_without_retry(status, error):
    body = {"error_code": "E1", "error_type": "t", "error_message": "nope", "error_details": {"scene.prompt": ["bad"]}}
    client, calls = client_for([httpx.Response(status, json=body, headers={"x-request-id": "rq"})])
    with pytest.raises(error) as err:
        client.create_scene(REQUEST, deadline())
    assert len(calls) == 1
    assert err.value.status == status and err.value.error_code == "E1" and err.value.request_id == "rq"
    assert err.value.details == {"scene.prompt": ["bad"]}


def test_no_call_starts_unless_the_time_left_covers_the_call_budget():
    client, calls = client_for([httpx.Response(200, json=OK)], call_budget=30.0)
    with pytest.raises(ClaidCallNotStarted) as err:
        client.create_scene(REQUEST, deadline(29.0))
    assert calls == [] and err.value.attempts == 0 and err.value.retry_after
    assert client.create_scene(REQUEST, deadline(30.0)).attempts == 1


def test_the_call_budget_is_the_read_timeout():
    seen = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json=OK)

    client = ClaidClient("k", http=httpx.Client(transport=httpx.MockTransport(handle)), call_budget=42.0)
    client.create_scene(REQUEST, deadline(500.0))
    assert seen[0]["read"] == 42.0 and seen[0]["connect"] == 5.0


class FakeSchedule:
    """Stands in for the shared rate-limit schedule: gives starts `delay` seconds from now."""

    def __init__(self, now: float, delay: float) -> None:
        self.now, self.delay, self.asked = now, delay, []

    def wait_for_start(self, latest: float) -> StartSlot:
        self.asked.append(latest)
        at = self.now + self.delay
        return StartSlot(at if at <= latest else None, at)


def test_a_start_from_the_schedule_too_late_for_the_budget_sends_nothing():
    schedule = FakeSchedule(now=1000.0, delay=25.0)
    client, calls = client_for([httpx.Response(200, json=OK)], limiter=schedule, clock=lambda: 1000.0)
    with pytest.raises(ClaidCallNotStarted) as err:
        client.create_scene(REQUEST, deadline(30.0))  # budget 10: latest start 20 s from now
    # Back in 5 s: the start 25 s away is then within the next invocation's reach of 20 s.
    assert calls == [] and schedule.asked == [1020.0] and err.value.retry_after == 5.0


def test_every_attempt_waits_for_its_own_start():
    schedule = FakeSchedule(now=1000.0, delay=0.5)
    client, calls = client_for(
        [httpx.Response(503), httpx.Response(200, json=OK)], limiter=schedule, clock=lambda: 1000.0
    )
    assert client.create_scene(REQUEST, deadline(100.0)).attempts == 2
    assert len(schedule.asked) == 2 and len(calls) == 2


def test_garbage_200_is_an_unknown_outcome():
    client, _ = client_for([httpx.Response(200, text="<html>")])
    with pytest.raises(ClaidOutcomeUnknown):
        client.create_scene(REQUEST, deadline())


def test_api_key_not_in_error_text():
    client, _ = client_for([httpx.Response(401, json={"error_message": "bad key"})])
    with pytest.raises(ClaidAuthError) as err:
        client.create_scene(REQUEST, deadline())
    assert "secret-key" not in str(err.value)


NESTED = {
    "parameters.credentials.access_key": [{"msg": "required", "loc": ["body", "parameters"]}],
    "scene": {"prompt": ["too short"], "steps": {"max": 49, "given": 50}},
    "hint": "see the docs",
    "limits": [1, 2.5, None, True],
}


@pytest.mark.parametrize(
    ("status", "answer", "code", "kind", "message", "details"),
    [
        (
            422,
            {"error_code": "9000", "error_type": "validation", "error_message": "bad", "error_details": NESTED},
            "9000",
            "validation",
            "bad",
            NESTED,
        ),
        (
            403,
            {"error_code": "4103", "error_type": "custom_models", "error_message": "no scope"},
            "4103",
            "custom_models",
            "no scope",
            {},
        ),
        (
            422,
            {
                "error_code": 9000,
                "error_type": "a-type-nobody-has-seen",
                "error_message": "x",
                "error_details": ["a", {"b": 1}],
            },
            "9000",
            "a-type-nobody-has-seen",
            "x",
            {"error_details": ["a", {"b": 1}]},
        ),
        (
            400,
            {"error_code": "1", "error_type": "image", "error_message": "x", "error_details": "not retrievable"},
            "1",
            "image",
            "x",
            {"error_details": "not retrievable"},
        ),
        (
            429,
            {
                "detail": {
                    "error_code": "2001",
                    "error_type": "general",
                    "error_message": "slow",
                    "error_details": {"w": [60]},
                }
            },
            "2001",
            "general",
            "slow",
            {"w": [60]},
        ),
        (
            422,
            {"detail": [{"loc": ["body", "scene"], "msg": "field required"}]},
            None,
            None,
            "Unprocessable Entity",
            {"detail": [{"loc": ["body", "scene"], "msg": "field required"}]},
        ),
        (
            402,
            {"error_code": "x", "error_type": "billing", "error_message": {"text": "No API calls left"}},
            "x",
            "billing",
            '{"text": "No API calls left"}',
            {},
        ),
        (500, ["not", "an", "object"], None, None, "Internal Server Error", {"body": ["not", "an", "object"]}),
    ],
    ids=[
        "nested",
        "unknown-type",
        "list-details",
        "string-details",
        "wrapped-429",
        "fastapi-list",
        "odd-message",
        "list-body",
    ],
)
def test_any_error_shape_keeps_code_type_message_and_details(status, answer, code, kind, message, details):
    client, _ = client_for([httpx.Response(status, json=answer, headers={"x-request-id": "rq-1"})], max_attempts=1)
    with pytest.raises(ClaidError) as err:
        client.create_scene(REQUEST, deadline())
    found = err.value
    assert (found.status, found.error_code, found.error_type, found.message) == (status, code, kind, message)
    assert found.details == details and found.request_id == "rq-1"


def test_a_non_json_error_body_still_gives_status_and_request_id():
    client, _ = client_for(
        [httpx.Response(502, text="<html>bad gateway</html>", headers={"x-request-id": "rq-2"})], max_attempts=1
    )
    with pytest.raises(ClaidUnavailable) as err:
        client.create_scene(REQUEST, deadline())
    assert (err.value.status, err.value.request_id, err.value.details) == (502, "rq-2", {})


def test_claids_error_lands_in_the_job_record_whole():
    from backdrop.events import Credits, GenerationDetail, Problem, SourceObject

    problem = Problem(
        code="claid_rejected",
        message="bad",
        claid_error_code="9000",
        claid_error_type="validation",
        claid_error_details=NESTED,
    )
    detail = GenerationDetail(
        status="failed",
        job_id="j",
        source=SourceObject(bucket="b", key="k"),
        credits=Credits(month="2025-01"),
        problem=problem,
    )
    again = GenerationDetail.model_validate_json(detail.model_dump_json())
    assert again.problem is not None and again.problem.claid_error_details == NESTED
    assert again.problem.claid_error_type == "validation"


EDIT = build_edit_request(
    RenditionSpec(width=2048, height=2048, format="webp"),
    "storage://shop/generated/cup/j/variant-1.jpeg",
    "storage://shop/generated/cup/j/renditions/1-2048x2048-crop.webp",
    upscale=True,
)
EDITED = {
    "data": {
        "input": {"ext": "jpeg", "mps": 1.05, "mime": "image/jpeg", "format": "JPEG", "width": 1024, "height": 1024},
        "output": {
            "ext": "webp",
            "mps": 4.19,
            "mime": "image/webp",
            "format": "WEBP",
            "width": 2048,
            "height": 2048,
            "object_key": "generated/cup/j/renditions/1-2048x2048-crop.webp",
            "object_bucket": "shop",
        },
        "profiling": {},
    }
}


def test_an_edit_goes_to_the_edit_path_with_the_same_key_and_reads_its_one_image():
    client, calls = client_for([httpx.Response(200, json=EDITED, headers={"x-request-id": "e1"})])
    result = client.edit_image(EDIT, deadline())
    assert calls[0].url.path == "/v1/image/edit" and calls[0].headers["authorization"] == "Bearer secret-key"
    assert (result.request_id, result.response.data.output.width, result.response.data.output.object_key) == (
        "e1",
        2048,
        "generated/cup/j/renditions/1-2048x2048-crop.webp",
    )
    assert EDIT.upscales


def test_an_edit_shares_the_retries_and_errors_of_a_scene():
    """Claid sends no Retry-After: its RateLimit-Reset is what the client waits."""
    sleeps: list[float] = []
    client, calls = client_for(
        [
            httpx.Response(429, json={"detail": {"error_code": "2001"}}, headers={"RateLimit-Reset": "3"}),
            httpx.Response(200, json=EDITED),
        ],
        sleeps,
        edit_path="/v1-beta1/image/edit",
    )
    assert client.edit_image(EDIT, deadline()).attempts == 2
    assert sleeps == [3.0] and calls[0].url.path == "/v1-beta1/image/edit"
    rejected, _ = client_for([httpx.Response(422, json={"error_code": "9000", "error_details": {"input": ["x"]}})])
    with pytest.raises(ClaidRejected) as err:
        rejected.edit_image(EDIT, deadline())
    assert err.value.details == {"input": ["x"]}


def test_an_edit_answer_that_is_not_one_image_is_an_unknown_outcome():
    scene_shaped = {"data": {"output": [EDITED["data"]["output"]]}}  # a list: a scene's answer, not an edit's
    client, _ = client_for([httpx.Response(200, json=scene_shaped)])
    with pytest.raises(ClaidOutcomeUnknown):
        client.edit_image(EDIT, deadline())


def test_the_shared_client_is_made_once_on_first_use_whoever_asks():
    from concurrent.futures import ThreadPoolExecutor

    from backdrop.claid.client import shared_client

    reads: list[int] = []

    def read_key() -> str:
        reads.append(1)
        return "key"

    client = shared_client(read_key, dynamodb=None, table_name="t", per_second=0, per_minute=0, base_url="http://x")
    assert reads == []  # nothing read before the first call needs it
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: client(), range(8)))
    assert reads == [1] and all(m is made[0] for m in made)
    assert made[0]._limiter is None  # both limits 0: no shared schedule
    limited = shared_client(read_key, dynamodb=object(), table_name="t", per_second=4, per_minute=120)()
    assert limited._limiter is not None and limited._limiter.per_second == 4
