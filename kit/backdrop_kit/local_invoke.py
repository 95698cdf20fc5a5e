"""`backdrop local invoke`: one handler from template.yaml, one event file, a fresh local stack; prints what it
did (the handler's answer, events on the bus, records, objects and notifications) — `sam local invoke` without
Docker, and with the AWS services it talks to."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from backdrop_kit.demo import bundled_samples
from backdrop_kit.runner import load_function
from backdrop_kit.stack import LocalStack, StackOptions


def _seed_uploads(stack: LocalStack, event: dict[str, Any], progress: Callable[[str], None]) -> dict[str, Any]:
    """Point the event's S3 records at the local bucket and put a sample photo at each key that is missing,
    so a sample event works as it is. Returns the event to invoke with."""
    s3 = stack.client("s3")
    sample = bundled_samples()[0].read_bytes()
    records = []
    for record in event.get("Records", []):
        body_text = record.get("body")
        try:
            body = json.loads(body_text) if isinstance(body_text, str) else None
        except ValueError:
            body = None  # a malformed message stays as it is: that is what the event is for
        if isinstance(body, dict) and isinstance(body.get("Records"), list):
            for s3_record in body["Records"]:
                s3_part = s3_record.get("s3", {})
                s3_part.setdefault("bucket", {})["name"] = stack.uploads_bucket
                key = unquote_plus(s3_part.get("object", {}).get("key", ""))
                # Only keys the processor treats as work get a photo; the others show the loop guard.
                if key.startswith("incoming/") and not key.endswith("/"):
                    s3.put_object(Bucket=stack.uploads_bucket, Key=key, Body=sample, ContentType="image/png")
                    head = s3.head_object(Bucket=stack.uploads_bucket, Key=key)
                    s3_part["object"]["versionId"] = head.get("VersionId")
                    s3_part["object"]["eTag"] = head["ETag"].strip('"')
                    progress(f"seeded s3://{stack.uploads_bucket}/{key} with a sample photo")
            record = {**record, "body": json.dumps(body)}
        records.append(record)
    return {**event, "Records": records} if "Records" in event else event


def local_invoke(
    function_id: str,
    event: dict[str, Any],
    *,
    mode: str = "connected",
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    with LocalStack(StackOptions(mode=mode)) as stack:
        functions = stack.template.functions()
        if function_id not in functions:
            raise KeyError(f"no function {function_id!r} in template.yaml; there are: {', '.join(functions)}")
        # Drop the S3 test event the bucket notification set-up produced; it is not part of this invocation.
        stack.client("sqs").purge_queue(QueueUrl=next(s.queue_url for s in stack.sources if s.kind == "sqs"))
        if any("s3" in json.dumps(r) for r in event.get("Records", [])):
            event = _seed_uploads(stack, event, progress)
        fn = load_function(stack, function_id)
        progress(f"invoking {function_id} ({fn.module.__file__})")
        report: dict[str, Any] = {"function": function_id, "error": None}
        try:
            report["result"] = fn.invoke(event)
        except Exception as exc:  # reported, as sam local invoke does
            report["error"] = f"{type(exc).__name__}: {exc}"
        report["events_on_bus"] = [{"detail-type": e["detail-type"], "detail": e["detail"]} for e in stack.bus_events()]
        report["records"] = stack.job_items()
        listing = stack.client("s3").list_objects_v2(Bucket=stack.uploads_bucket, Prefix="generated/")
        report["objects_written"] = [o["Key"] for o in listing.get("Contents", [])]
        report["notifications"] = stack.notifications()
        return report
