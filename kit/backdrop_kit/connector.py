"""Claid's S3 storage connector: registering the uploads bucket with Claid's storage API, and the stack update
that switches the functions to connected storage."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any

import httpx

# Claid's names are at most 50 characters; the name is the host part of every storage:// URI, so it keeps to
# characters a URI carries as they are (template.yaml's ClaidStorageName has the same pattern).
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,50}$")


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(
            f"connector name {name!r}: use 1 to 50 letters, digits, '_', '.' or '-' (it becomes storage://<name>/...)"
        )
    return name


def check_path(path: str, generated_prefix: str) -> str:
    """The connector's path must hold the generated prefix, where Claid writes each job's variants through it
    (uploads reach Claid as presigned URLs, never through the connector): "" or the generated prefix itself, the
    same rule as template.yaml's ConnectorCoversTheGeneratedPrefix."""
    if path not in ("", generated_prefix):
        raise ValueError(
            f"--path {path!r} does not cover {generated_prefix}, where Claid writes the variants: every job would "
            f"fail. Use --path '' (the whole bucket; the connector user's policy limits what Claid reaches) or "
            f"--path {generated_prefix}"
        )
    return path


class ClaidRefused(RuntimeError):
    """Claid did not register the connector; the message carries its status and x-request-id."""


@dataclass(frozen=True)
class ConnectorKey:
    access_key_id: str
    secret_access_key: str


def connector_key(secretsmanager: Any, secret_arn: str) -> ConnectorKey:
    """The connector user's access key, as the stack stored it (ClaidConnectorSecret)."""
    value = json.loads(secretsmanager.get_secret_value(SecretId=secret_arn)["SecretString"])
    return ConnectorKey(value["access_key_id"], value["secret_access_key"])


def register_storage(
    http: httpx.Client, claid_url: str, api_key: str, *, name: str, bucket: str, path: str, key: ConnectorKey
) -> dict[str, Any]:
    """POST /v1/storage/storages; returns Claid's description of the connector (it never echoes the secret)."""
    body = {
        "name": name,
        "type": "s3",
        "parameters": {
            "bucket": bucket,
            "path": path,
            "credentials": {"access_key": key.access_key_id, "secret_access_key": key.secret_access_key},
        },
    }
    answer = http.post(
        claid_url.rstrip("/") + "/v1/storage/storages",
        json=body,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30,
    )
    if answer.status_code != 200:
        raise ClaidRefused(
            f"Claid answered {answer.status_code} (x-request-id {answer.headers.get('x-request-id')}): "
            f"{answer.text[:500]}"
        )
    data: dict[str, Any] = answer.json()["data"]
    return data


def parameter_update(stack_name: str | None, name: str, path: str) -> str:
    """The deploy command that turns connected-storage mode on (every other parameter kept as it is), quoted for
    a POSIX shell so that it can be pasted as it is."""
    overrides = " ".join(
        shlex.quote(f"{key}={value}") for key, value in (("ClaidStorageName", name), ("ClaidStoragePrefix", path))
    )
    if stack_name:
        return f"sam deploy --stack-name {shlex.quote(stack_name)} --parameter-overrides {overrides}"
    return f"deploy with --parameter-overrides {overrides}"
