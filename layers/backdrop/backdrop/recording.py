"""The recorder's logic: keep temporary images, write the terminal record and credits once, notify."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from backdrop.config import RecorderConfig
from backdrop.events import RECORDED, BudgetAlertDetail, GenerationDetail, OutputObject, put_on_bus
from backdrop.measures import measure
from backdrop.store.jobs import Jobs
from backdrop.uploads import CONTENT_TYPES, SNIFF_BYTES, content_type, sniff_image_type

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient


class DownloadRefused(RuntimeError):
    """A tmp_url the recorder will not fetch (host not allowed, not https, too large)."""


def host_allowed(url: str, allowed: list[str], *, allow_insecure: bool) -> bool:
    parts = urlsplit(url)
    if parts.scheme != "https" and not (allow_insecure and parts.scheme == "http"):
        return False
    host = (parts.hostname or "").lower()
    return any(host == pattern or fnmatch.fnmatchcase(host, pattern) for pattern in allowed)


def _safe_url(url: str) -> str:
    """Scheme, host and path only: query strings may carry signatures."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def keep_temporary_image(
    http: httpx.Client,
    s3: Any,
    url: str,
    bucket: str,
    key: str,
    fmt: str,
    *,
    hosts: list[str],
    allow_insecure: bool,
    max_bytes: int,
) -> None:
    """Copy an image from Claid's temporary bucket into ours: the one place image bytes pass through a function
    (temporary-bucket mode only; connected storage has Claid write into the bucket itself)."""
    if not host_allowed(url, hosts, allow_insecure=allow_insecure):
        raise DownloadRefused(f"refusing to download {_safe_url(url)}: only https from {', '.join(hosts)}")
    chunks = bytearray()
    with http.stream("GET", url, timeout=httpx.Timeout(30.0, connect=5.0)) as response:
        if response.status_code != 200:
            raise DownloadRefused(f"{_safe_url(url)} answered HTTP {response.status_code}")
        declared = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if declared and declared != CONTENT_TYPES.get(fmt):
            raise DownloadRefused(f"{_safe_url(url)} is {declared!r}; Claid said {fmt}")
        for chunk in response.iter_bytes():
            chunks.extend(chunk)
            if len(chunks) > max_bytes:
                raise DownloadRefused(f"{_safe_url(url)} is larger than {max_bytes:,} bytes")
    # What we keep under the merchant's bucket is the image Claid said, whatever the link served.
    sniffed = sniff_image_type(bytes(chunks[:SNIFF_BYTES]))
    if sniffed != CONTENT_TYPES.get(fmt, "").removeprefix("image/"):
        raise DownloadRefused(f"{_safe_url(url)} is not a {fmt} image (its first bytes say {sniffed or 'unknown'})")
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(chunks), ContentType=content_type(fmt))


@dataclass(frozen=True)
class RecordOutcome:
    job_id: str
    status: str
    recorded: bool  # False: this job was already recorded (a redelivered event)
    notified: bool
    outputs: list[OutputObject]


@dataclass
class Recorder:
    config: RecorderConfig
    s3: S3Client
    sns: SNSClient
    events: EventBridgeClient
    jobs: Jobs
    http: httpx.Client

    def keep_temporary_images(self, detail: GenerationDetail) -> GenerationDetail:
        """Temporary-bucket mode: copy each tmp_url image into the job's output prefix (deterministic keys,
        so a redelivery overwrites the same objects)."""
        if not any(o.tmp_url and not o.key for o in detail.outputs):
            return detail
        kept = []
        for index, output in enumerate(detail.outputs, start=1):
            if output.key or not output.tmp_url:
                kept.append(output)
                continue
            key = (
                f"{detail.output_prefix or self.config.generated_prefix + detail.job_id + '/'}"
                f"variant-{index}.{output.format}"
            )
            self._copy(output.tmp_url, detail.source.bucket, key, output.format)
            kept.append(output.model_copy(update={"bucket": detail.source.bucket, "key": key}))
        return detail.model_copy(update={"outputs": kept})

    def _copy(self, url: str, bucket: str, key: str, fmt: str) -> None:
        cfg = self.config
        keep_temporary_image(
            self.http,
            self.s3,
            url,
            bucket,
            key,
            fmt,
            hosts=cfg.claid_download_hosts,
            allow_insecure=cfg.allow_insecure_downloads,
            max_bytes=cfg.max_variant_bytes,
        )

    def record(self, detail: GenerationDetail) -> RecordOutcome:
        detail = self.keep_temporary_images(detail)
        recorded = self.jobs.put_outcome(detail)
        notified = False
        job = None if recorded else self.jobs.get(detail.job_id)
        if recorded or (job is not None and not job.notified):
            self._notify(detail)
            self.jobs.mark_notified(detail.job_id)
            put_on_bus(self.events, self.config.event_bus_name, RECORDED, detail)
            notified = True
        if recorded:  # counted once per job, like the ledger
            measure(f"Jobs{detail.status.title()}")
            measure("CreditsUsed", detail.credits.used)
            measure("ImagesGenerated", detail.images)
        return RecordOutcome(detail.job_id, detail.status, recorded, notified, detail.outputs)

    def _notify(self, detail: GenerationDetail) -> None:
        subject = {
            "succeeded": f"backdrop: {detail.images} variant(s) of {detail.source.key}",
            "failed": f"backdrop: generation failed for {detail.source.key}",
            "rejected": f"backdrop: upload rejected: {detail.source.key}",
        }[detail.status]
        message = {
            "job_id": detail.job_id,
            "status": detail.status,
            "source": detail.source.model_dump(),
            "outputs": [o.model_dump(exclude={"tmp_url"}) for o in detail.outputs],
            "credits": detail.credits.used,
            "problem": detail.problem.model_dump() if detail.problem else None,
        }
        self.sns.publish(
            TopicArn=self.config.notification_topic_arn,
            Subject=_subject(subject),
            Message=json.dumps(message),
            MessageAttributes={
                "kind": {"DataType": "String", "StringValue": "generation"},
                "status": {"DataType": "String", "StringValue": detail.status},
                "profile": {"DataType": "String", "StringValue": detail.profile or "-"},
                **({"reason": {"DataType": "String", "StringValue": detail.problem.code}} if detail.problem else {}),
            },
        )

    def alert(self, detail: BudgetAlertDetail) -> None:
        self.sns.publish(
            TopicArn=self.config.notification_topic_arn,
            Subject=_subject(f"backdrop alert: {detail.kind.replace('_', ' ')} ({detail.month})"),
            Message=json.dumps(detail.model_dump(mode="json")),
            MessageAttributes={
                "kind": {"DataType": "String", "StringValue": "alert"},
                "alert": {"DataType": "String", "StringValue": detail.kind},
            },
        )


def _subject(text: str) -> str:
    """SNS subjects: at most 100 printable ASCII characters, no newlines."""
    ascii_text = text.encode("ascii", "replace").decode().replace("\n", " ")
    return ascii_text[:100]
