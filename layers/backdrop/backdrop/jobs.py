"""Jobs: the unit of work and of payment. One object version = one job id = at most one charge."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from backdrop.ids import stable_id
from backdrop.settings import SettingNote, Settings
from backdrop.uploads import Upload, output_stem

# Keys made only of these characters go to Claid as storage:// URIs unchanged; anything else (spaces,
# unicode, '+', parentheses) goes as a presigned https URL, whose encoding is unambiguous.
_STORAGE_SAFE = re.compile(r"^[A-Za-z0-9._/-]+$")


class Job(BaseModel):
    """What the processor hands to the guarded Claid call; also the idempotency key's source."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    job_id: str
    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    sequencer: str | None  # the version's place in S3's order (backdrop.versions)
    last_modified: str | None
    profile: str | None
    settings: Settings
    month: str  # the ledger month the credits count against, fixed when the job is planned
    output_prefix: str  # generated/<stem>/<job_id>/ in the uploads bucket
    notes: tuple[SettingNote, ...] = ()  # lower-layer settings left out (not part of the job id)


def job_id_for(upload: Upload, version: str | None, fingerprint: str) -> str:
    """One object version -> one id, wherever it runs and whatever the settings are by the time a notification
    is delivered again: one upload is at most one charge. A new generation of the same photo is a new version
    (`backdrop review`'s "try again" copies the photo onto itself). Only an object with neither a version nor
    an ETag (never from S3 itself) falls back to its settings, so it cannot collapse unrelated jobs."""
    return stable_id(upload.bucket, upload.key, version or "", "" if version else fingerprint)


def current_month(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m")


def output_prefix_for(generated_prefix: str, key: str, job_id: str) -> str:
    return f"{generated_prefix}{output_stem(key)}/{job_id}/"


def plan_job(
    upload: Upload,
    *,
    version_id: str | None,
    etag: str | None,
    profile: str | None,
    settings: Settings,
    generated_prefix: str,
    last_modified: str | None = None,
    now: datetime | None = None,
    notes: tuple[SettingNote, ...] = (),
) -> Job:
    job_id = job_id_for(upload, version_id or etag, settings.fingerprint())
    return Job(
        job_id=job_id,
        bucket=upload.bucket,
        key=upload.key,
        version_id=version_id,
        etag=etag,
        # A sequencer says where its own event stands; a version HeadObject found instead has none of its own.
        sequencer=upload.sequencer if upload.version_id in (None, version_id) else None,
        last_modified=last_modified,
        profile=profile,
        settings=settings,
        month=current_month(now),
        output_prefix=output_prefix_for(generated_prefix, upload.key, job_id),
        notes=notes,
    )


def storage_uri(storage_name: str, storage_prefix: str, key: str) -> str | None:
    """storage://<name>/<key relative to the connector's prefix>, or None when the key cannot be one."""
    if not storage_name or not key.startswith(storage_prefix):
        return None
    relative = key.removeprefix(storage_prefix)
    if not _STORAGE_SAFE.match(relative):
        return None
    return f"storage://{storage_name}/{quote(relative, safe='/')}"


def refusal_id(bucket: str, key: str, version: str | None, reason: str) -> str:
    """The id a refusal of one object version is recorded under: one per version and reason, so a redelivered
    refusal is recorded once, and never the job's own id, so a refusal that a change of settings or budget lifts
    leaves the job free to be processed and recorded when the photo is sent again (events.LIFTABLE_PROBLEMS)."""
    return stable_id(bucket, key, version or "", "rejected", reason)


def rejection_id(upload: Upload, reason: str) -> str:
    """A stable id for an upload rejected before it became a job (its version as the notification names it)."""
    return refusal_id(upload.bucket, upload.key, upload.version_id or upload.etag, reason)


def version_job_id(bucket: str, key: str, version: str) -> str:
    """The job id of an object version (`job_id_for` when the version or ETag is known)."""
    return job_id_for(Upload(bucket=bucket, key=key), version, "")
