"""The storefront webhook: EventBridge's API destination, played locally by the kit's forwarder, POSTs
`Generation Recorded` with the secret header to a receiver on 127.0.0.1; what it cannot deliver is dead-lettered."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .conftest import Pipeline

HEADER = "X-Backdrop-Webhook-Secret"


class Receiver:
    """A storefront endpoint: records each request and answers with `status`."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/backdrop"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def secret_of(pipeline: Pipeline) -> str:
    arn = pipeline.stack.physical["WebhookSecret"]
    return str(pipeline.stack.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])


def test_recorded_generations_are_posted_with_the_secret_header(make_pipeline, receiver: Receiver):
    pipeline = make_pipeline(parameters={"WebhookUrl": receiver.url, "WebhookStatuses": "succeeded,rejected"})
    pipeline.stack.put_profile("summer", {"number_of_images": 1})
    pipeline.upload("incoming/summer/cup.png")
    pipeline.upload("incoming/notes.txt", b"not a photo", content_type="text/plain")
    pipeline.drain()
    assert len(receiver.requests) == 2
    secret = secret_of(pipeline)
    assert len(secret) >= 32
    for request in receiver.requests:
        assert request["path"] == "/hooks/backdrop"
        assert request["headers"][HEADER] == secret
        assert request["headers"]["Content-Type"].startswith("application/json")
        assert request["body"]["source"] == "backdrop" and request["body"]["detail-type"] == "Generation Recorded"
    by_status = {r["body"]["detail"]["status"]: r["body"]["detail"] for r in receiver.requests}
    assert set(by_status) == {"succeeded", "rejected"}
    [variant] = by_status["succeeded"]["outputs"]
    assert variant["key"].startswith("generated/cup/") and variant["tmp_url"] is None
    assert by_status["rejected"]["problem"]["code"] == "not_an_image"


def test_only_the_chosen_statuses_are_posted(make_pipeline, receiver: Receiver):
    pipeline = make_pipeline(parameters={"WebhookUrl": receiver.url})  # default: succeeded only
    pipeline.upload("incoming/notes.txt", b"not a photo", content_type="text/plain")
    pipeline.drain()
    assert receiver.requests == []


def test_an_endpoint_that_keeps_failing_gets_retries_then_the_dlq(make_pipeline, receiver: Receiver):
    receiver.status = 503
    pipeline = make_pipeline(parameters={"WebhookUrl": receiver.url})
    pipeline.upload("incoming/cup.png")
    pipeline.drain()
    [webhook] = [w for w in pipeline.stack.webhooks if w.rule_id == "WebhookRule"]
    assert len(receiver.requests) == webhook.max_attempts > 1  # retried, never given up silently
    assert len({r["body"]["id"] for r in receiver.requests}) == 1
    dlq = pipeline.stack.queue_url("WebhookDLQ")
    [dead] = pipeline.sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"])["Messages"]
    assert json.loads(dead["Body"])["detail-type"] == "Generation Recorded"
    assert dead["MessageAttributes"]["ERROR_MESSAGE"]["StringValue"] == "HTTP 503"


def test_no_webhook_without_a_url(pipeline: Pipeline):
    assert pipeline.stack.webhooks == [] and "WebhookDLQ" not in pipeline.stack.physical
