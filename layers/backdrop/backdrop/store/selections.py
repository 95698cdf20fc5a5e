"""Selections: which variants of a photo are published, one record per photo with a version that only goes up.

Items (pk / sk):
  PUBLISHED#<bucket>/<source key> / SELECTION  the photo's current selection: version, job, the selection, the
                                               published keys it maps to (`targets`), its renditions
                                               (`renditions`), and every key an earlier selection of this photo
                                               listed (`retired`); the nested lists are kept as JSON text
  JOB#<job_id> / JOB                           gains `selection` and `selection_version` (jobs.py)

A claim writes both in one transaction: the photo's record moves to the next version only if it is still at the
version the chooser read, and the job's record says what was chosen for it only if the job succeeded. Two
records that disagreed would publish one choice and show another on the review page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from backdrop.store.items import Table, as_attributes, cancelled, key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class SelectionRecord(BaseModel):
    """A photo's current selection as stored. `selection`, `targets`, `renditions` and `retired` are JSON text
    (publishing.Selection, a list of publishing.PublishedImage, of renditions.PlannedRendition, of keys)."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    bucket: str
    source_key: str
    version: int
    job_id: str
    selection: str
    targets: str
    renditions: str | None = None  # None: recorded before renditions (decisions 38)
    retired: str | None = None  # None: recorded before decisions 33


class Selections(Protocol):
    def current(self, bucket: str, source_key: str) -> SelectionRecord | None: ...

    def claim(self, record: SelectionRecord) -> bool:
        """Make `record` the photo's selection if the photo is still at `record.version - 1` (no record when that
        is 0) and its job succeeded; the job's record gains the selection. False when either condition fails."""
        ...


class DynamoSelections:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._table = Table(client, table_name)

    def current(self, bucket: str, source_key: str) -> SelectionRecord | None:
        item = self._table.get(f"PUBLISHED#{bucket}/{source_key}", "SELECTION")
        return SelectionRecord.model_validate({**item, "bucket": bucket, "source_key": source_key}) if item else None

    def claim(self, record: SelectionRecord) -> bool:
        seen = record.version - 1
        item = {
            "pk": f"PUBLISHED#{record.bucket}/{record.source_key}",
            "sk": "SELECTION",
            **record.model_dump(exclude={"bucket", "source_key"}, exclude_none=True),
        }
        put: dict[str, object] = {"Item": as_attributes(item)}
        if seen == 0:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "version = :seen"
            put["ExpressionAttributeValues"] = as_attributes({":seen": seen})
        try:
            self._table.transact(
                [
                    {"Put": put},
                    {
                        "Update": {
                            "Key": key(f"JOB#{record.job_id}", "JOB"),
                            "UpdateExpression": "SET selection = :selection, selection_version = :version",
                            "ConditionExpression": "#status = :succeeded",
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": as_attributes(
                                {":selection": record.selection, ":version": record.version, ":succeeded": "succeeded"}
                            ),
                        }
                    },
                ]
            )
        except ClientError as exc:
            if not cancelled(exc):
                raise
            return False
        return True
