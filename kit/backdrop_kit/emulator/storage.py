"""Storage connectors (S3, through the endpoint the emulator is given) and the temporary bucket."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import boto3


@dataclass
class Connector:
    id: str
    name: str
    bucket: str
    path: str
    access_key: str
    secret_access_key: str
    created_at: str

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": "s3",
            "parameters": {"bucket": self.bucket, "path": self.path},
            "created_at": self.created_at,
        }


class Connectors:
    def __init__(self, endpoint_url: Callable[[], str | None], region: str) -> None:
        self._endpoint_url = endpoint_url
        self._region = region
        self._by_name: dict[str, Connector] = {}
        self._lock = threading.Lock()

    def add(self, name: str, bucket: str, path: str, access_key: str, secret_access_key: str) -> Connector:
        with self._lock:
            if name in self._by_name:
                raise KeyError(name)
            connector = Connector(
                uuid.uuid4().hex[:12], name, bucket, path, access_key, secret_access_key, datetime.now(UTC).isoformat()
            )
            self._by_name[name] = connector
            return connector

    def get(self, name: str) -> Connector | None:
        return self._by_name.get(name)

    def all(self) -> list[Connector]:
        return list(self._by_name.values())

    def _client(self, connector: Connector) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self._endpoint_url(),
            region_name=self._region,
            aws_access_key_id=connector.access_key,
            aws_secret_access_key=connector.secret_access_key,
        )

    def key_for(self, connector: Connector, path: str) -> str:
        prefix = connector.path.strip("/")
        return f"{prefix}/{path}" if prefix else path

    def read(self, connector: Connector, path: str) -> bytes:
        answer = self._client(connector).get_object(Bucket=connector.bucket, Key=self.key_for(connector, path))
        return bytes(answer["Body"].read())

    def write(self, connector: Connector, path: str, data: bytes, content_type: str) -> str:
        key = self.key_for(connector, path)
        self._client(connector).put_object(Bucket=connector.bucket, Key=key, Body=data, ContentType=content_type)
        return key


class TemporaryBucket:
    """Images kept in memory and served at expiring tmp_urls."""

    def __init__(self, ttl: Callable[[], float], clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self.clock = clock
        self._items: dict[str, tuple[bytes, str, float]] = {}
        self._lock = threading.Lock()

    def put(self, data: bytes, mime: str) -> str:
        token = uuid.uuid4().hex
        with self._lock:
            self._items[token] = (data, mime, self.clock() + self._ttl())
        return token

    def get(self, token: str) -> tuple[bytes, str] | Literal[False] | None:
        """(data, mime); None when unknown; False when expired."""
        with self._lock:
            item = self._items.get(token)
            if item is None:
                return None
            if self.clock() >= item[2]:
                del self._items[token]
                return False
            return item[0], item[1]
