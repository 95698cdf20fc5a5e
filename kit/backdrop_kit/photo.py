"""One photo's story, read from a stack: each S3 version, what was recorded for it (its job's outcome, and the
refusals a change lifted or may lift), which job is the photo's latest, what is held for a job in flight, and
what is published at its stable keys (and its renditions) and whether those objects are there.

Nothing is listed or scanned in the table: every item is found by a key computed from the version (the job id is
the version, a refusal's id the version and its reason), so the story costs one S3 listing of the key's versions,
a few BatchGetItems and a HeadObject per published key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from backdrop.events import LIFTABLE_PROBLEMS
from backdrop.jobs import refusal_id, version_job_id
from backdrop.store.items import as_attributes, from_attributes
from botocore.exceptions import ClientError

# Every reason an upload of one version can be refused with, each recorded under refusal_id(version, reason).
REFUSAL_REASONS = sorted(
    LIFTABLE_PROBLEMS | {"not_an_image", "empty_file", "bad_metadata", "object_missing", "not_a_file"}
)
_ABSENT = {"403", "404", "NoSuchKey", "NotFound"}


class PhotoNotFound(LookupError):
    """No object was ever at that key of the uploads bucket (no version, no delete marker)."""


@dataclass(frozen=True)
class PhotoStack:
    """What the story needs of a stack: its bucket, watched prefix and table, and clients with the caller's rights."""

    bucket: str
    incoming_prefix: str
    table: str
    s3: Any
    dynamodb: Any


def photo_key(given: str, stack: PhotoStack) -> str:
    """`incoming/x.png`, or `s3://<the uploads bucket>/incoming/x.png`: the key, or ValueError saying what is wrong."""
    key = given
    if given.startswith("s3://"):
        bucket, _, key = given.removeprefix("s3://").partition("/")
        if bucket != stack.bucket:
            raise ValueError(f"s3://{bucket} is not this stack's uploads bucket ({stack.bucket})")
    if not key or key.endswith("/"):
        raise ValueError(f"{given!r} names no photo: give its key, e.g. {stack.incoming_prefix}cup.png")
    if not key.startswith(stack.incoming_prefix):
        raise ValueError(
            f"{key!r} is not under {stack.incoming_prefix}, the folder the stack watches: it is not a photo of "
            "this stack (its variants and published images are told by their photo's key)"
        )
    return key


def _versions(stack: PhotoStack, key: str) -> list[dict[str, Any]]:
    """The key's versions and delete markers, newest first, as S3 orders them."""
    found: list[dict[str, Any]] = []
    pages = stack.s3.get_paginator("list_object_versions").paginate(Bucket=stack.bucket, Prefix=key)
    for page in pages:
        for version in page.get("Versions", []):
            if version["Key"] == key:
                found.append({**version, "deleted": False})
        for marker in page.get("DeleteMarkers", []):
            if marker["Key"] == key:
                found.append({**marker, "deleted": True})
    return sorted(found, key=lambda v: v["LastModified"], reverse=True)


def _items(stack: PhotoStack, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """BatchGetItem by (pk, sk), a hundred at a time, unprocessed keys asked again."""
    wanted = list(dict.fromkeys(keys))
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(wanted), 100):
        request: dict[str, Any] = {
            stack.table: {
                "Keys": [as_attributes({"pk": pk, "sk": sk}) for pk, sk in wanted[start : start + 100]],
                "ConsistentRead": True,
            }
        }
        while request:
            answer = stack.dynamodb.batch_get_item(RequestItems=request)
            for raw in answer.get("Responses", {}).get(stack.table, []):
                item = from_attributes(raw)
                found[(str(item["pk"]), str(item["sk"]))] = item
            request = answer.get("UnprocessedKeys") or {}
    return found


def _record(item: dict[str, Any]) -> dict[str, Any]:
    detail = json.loads(str(item.get("detail", "{}")))
    return {
        "job_id": item["job_id"],
        "status": item["status"],
        "final": bool(item.get("final", True)),
        "reason": item.get("reason"),
        "message": item.get("reason_message"),
        "images": int(item.get("images", 0)),
        "credits": float(item.get("credits", 0)),
        "month": item.get("month"),
        "profile": None if item.get("profile") in (None, "-") else item["profile"],
        "recorded_at": item.get("recorded_at"),
        "claid_request_id": item.get("claid_request_id"),
        "variants": [o.get("key") for o in detail.get("outputs", []) if o.get("key")],
    }


def _present(stack: PhotoStack, key: str) -> bool:
    try:
        stack.s3.head_object(Bucket=stack.bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _ABSENT:
            return False
        raise
    return True


def story(stack: PhotoStack, key: str) -> dict[str, Any]:
    """The photo's story as JSON-ready data (`describe` says it for a person)."""
    versions = _versions(stack, key)
    if not versions:
        raise PhotoNotFound(
            f"s3://{stack.bucket}/{key} has never held an object: check the key (keys are case-sensitive)"
        )
    keys: list[tuple[str, str]] = [
        (f"SOURCE#{stack.bucket}/{key}", "LATEST"),
        (f"PUBLISHED#{stack.bucket}/{key}", "SELECTION"),
    ]
    for version in versions:
        if version["deleted"]:
            continue
        job_id = version_job_id(stack.bucket, key, version["VersionId"])
        keys += [(f"JOB#{job_id}", "JOB"), (f"RESERVATION#{job_id}", "RESERVATION")]
        keys += [(f"JOB#{refusal_id(stack.bucket, key, version['VersionId'], r)}", "JOB") for r in REFUSAL_REASONS]
    items = _items(stack, keys)
    latest = items.get((f"SOURCE#{stack.bucket}/{key}", "LATEST"))
    told: list[dict[str, Any]] = []
    for version in versions:
        entry: dict[str, Any] = {
            "version_id": version["VersionId"],
            "last_modified": version["LastModified"].isoformat(),
            "is_latest": bool(version.get("IsLatest")),
            "deleted": version["deleted"],
        }
        if not version["deleted"]:
            job_id = version_job_id(stack.bucket, key, version["VersionId"])
            records = [
                _record(item)
                for item in [items.get((f"JOB#{job_id}", "JOB"))]
                + [
                    items.get((f"JOB#{refusal_id(stack.bucket, key, version['VersionId'], r)}", "JOB"))
                    for r in REFUSAL_REASONS
                ]
                if item is not None
            ]
            held = items.get((f"RESERVATION#{job_id}", "RESERVATION"))
            outcome = next((r for r in records if r["final"]), None)
            entry.update(
                {
                    "size": version.get("Size"),
                    "job_id": job_id,
                    "outcome": outcome,
                    "refusals": sorted((r for r in records if not r["final"]), key=lambda r: r["recorded_at"] or ""),
                    "in_flight": None
                    if held is None
                    else {"credits_held": float(held["credits"]), "month": held["month"]},
                }
            )
        told.append(entry)
    return {
        "bucket": stack.bucket,
        "key": key,
        "latest_job_id": None if latest is None else latest["job_id"],
        "versions": told,
        "published": _published(stack, items.get((f"PUBLISHED#{stack.bucket}/{key}", "SELECTION"))),
    }


def _published(stack: PhotoStack, record: dict[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    selection = json.loads(str(record["selection"]))
    images = [
        {
            "variant": t.get("variant"),
            "key": t["key"],
            "from_key": t.get("from_key"),
            "present": _present(stack, t["key"]),
        }
        for t in json.loads(str(record["targets"]))
    ]
    renditions = [
        {**{k: v for k, v in r.items() if k != "bucket"}, "present": _present(stack, r["key"])}
        for r in json.loads(str(record.get("renditions", "[]")))
    ]
    return {
        "version": int(record["version"]),
        "job_id": record["job_id"],
        "variants": selection.get("variants"),
        "chosen_by": selection.get("chosen_by"),
        "actor": selection.get("actor"),
        "chosen_at": selection.get("chosen_at"),
        "images": images,
        "renditions": renditions,
    }


def describe(told: dict[str, Any]) -> str:
    """The story for a person, newest version first."""
    lines = [f"s3://{told['bucket']}/{told['key']}"]
    for version in told["versions"]:
        when = version["last_modified"][:19].replace("T", " ")
        head = f"  version {version['version_id']}  {when} UTC" + ("  (current)" if version["is_latest"] else "")
        if version["deleted"]:
            lines.append(head + "  deleted")
            continue
        lines.append(head + f"  job {version['job_id']}")
        for refusal in version["refusals"]:
            lifted = "lifted since" if version["outcome"] else "sent again after the change, it is processed"
            lines.append(f"    refused  {refusal['reason']}: {refusal['message']} ({lifted})")
        outcome = version["outcome"]
        if outcome is not None:
            what = f"{outcome['status']}"
            if outcome["status"] == "succeeded":
                what += f", {outcome['images']} image(s), {outcome['credits']:g} credits"
            else:
                what += f" {outcome['reason']}: {outcome['message']}"
            latest = "  [the photo's latest job]" if outcome["job_id"] == told["latest_job_id"] else ""
            lines.append(f"    {what}{latest}")
        elif version["in_flight"] is not None:
            lines.append(f"    in flight: {version['in_flight']['credits_held']:g} credits held, not recorded yet")
        elif not version["refusals"]:
            lines.append(
                "    nothing recorded (not processed: sent before the stack watched the bucket, or still queued)"
            )
    published = told["published"]
    if published is None:
        lines.append("  published: nothing (publish policy none, or no choice made yet)")
        return "\n".join(lines)
    lines.append(
        f"  published: selection version {published['version']}, job {published['job_id']}, variants "
        f"{published['variants']}, chosen by {published['chosen_by']} ({published['actor']}) {published['chosen_at']}"
    )
    for image in published["images"] + published["renditions"]:
        lines.append(f"    {image['key']}  {'present' if image['present'] else 'MISSING'}")
    return "\n".join(lines)
