"""AWS clients made on first use, once per process, and shared by every thread of it.

A cold start pays only for the clients its first path needs: the processor's SQS client waits for a hand-back,
its SSM client for a profile, Secrets Manager for the first Claid call. boto3's default session is not safe to
make clients from two threads at once, so each is made under a lock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

T = TypeVar("T")


class Lazy(Generic[T]):
    """A value made by `make()` the first time it is asked for, then kept."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._value: T | None = None
        self._making = threading.Lock()  # one per value: making one may make another (a client for a provider)

    def get(self) -> T:
        if self._value is None:
            with self._making:
                if self._value is None:
                    self._value = self._make()
        return self._value


_boto3_session = threading.Lock()  # boto3's default session must not make two clients at once


def _client(service: str, pool: int | None) -> Any:
    config = Config(max_pool_connections=pool) if pool else None
    with _boto3_session:
        return boto3.client(service, config=config)  # type: ignore[call-overload]


class _OnFirstUse:
    """Stands in for an object (a client, a provider holding one) and makes it at the first attribute asked for."""

    def __init__(self, lazy: Lazy[Any]) -> None:
        self._lazy = lazy

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lazy.get(), name)


def on_first_use(make: Callable[[], T]) -> T:
    """`make()`'s value, made when first used: for what wraps a client and touches it when built (Powertools'
    parameter providers register on the client's events as they are made)."""
    return cast(T, _OnFirstUse(Lazy(make)))


class Clients:
    """One function's AWS clients, each made the first time one of its methods is used; `warm()` makes the ones
    every invocation needs during the cold start. `pool`: connections per client, for threads that share them."""

    def __init__(self, pool: int | None = None) -> None:
        self._pool = pool
        self._lazy: dict[str, Lazy[Any]] = {}

    def _lazy_client(self, service: str) -> Lazy[Any]:
        return self._lazy.get(service) or self._lazy.setdefault(service, Lazy(lambda: _client(service, self._pool)))

    def _get(self, service: str) -> Any:
        return _OnFirstUse(self._lazy_client(service))

    def warm(self, *services: str) -> Clients:
        for service in services:
            self._lazy_client(service).get()
        return self

    @property
    def s3(self) -> S3Client:
        return self._get("s3")

    @property
    def dynamodb(self) -> DynamoDBClient:
        return self._get("dynamodb")

    @property
    def events(self) -> EventBridgeClient:
        return self._get("events")

    @property
    def sqs(self) -> SQSClient:
        return self._get("sqs")

    @property
    def sns(self) -> SNSClient:
        return self._get("sns")

    @property
    def ssm(self) -> SSMClient:
        return self._get("ssm")

    @property
    def secretsmanager(self) -> SecretsManagerClient:
        return self._get("secretsmanager")
