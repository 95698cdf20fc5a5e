"""The cold-start floor is observed, not listed: what a handler imports and the clients it makes, nothing else."""

import os
import sys
from pathlib import Path

from bench import coldstart

ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, "AWS_DEFAULT_REGION": "us-east-1"}


def _handler(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "handler.py"
    path.write_text(body)
    return path


def test_a_library_imported_but_no_client_made_is_in_the_floor(tmp_path):
    # The observer wraps httpx's constructors; that must not hide httpx from the floor of a handler that imports it.
    floor = coldstart.observe_floor("handler", _handler(tmp_path, "import httpx\n"), ENV)
    assert "httpx" in floor.modules
    assert floor.httpx_clients == () and floor.aws_clients == ()


def test_a_library_never_imported_is_not_in_the_floor(tmp_path):
    floor = coldstart.observe_floor("handler", _handler(tmp_path, "import json\n"), ENV)
    assert "httpx" not in floor.modules and "boto3" not in floor.modules


def test_clients_made_at_import_are_made_by_the_floor_too(tmp_path):
    body = "import boto3, httpx\nboto3.client('s3')\nboto3.client('s3')\nhttpx.Client()\n"
    floor = coldstart.observe_floor("handler", _handler(tmp_path, body), ENV)
    assert floor.aws_clients == ("s3", "s3") and floor.httpx_clients == ("Client",)
    script = floor.script()
    assert script.count("boto3.client('s3')") == 2 and "httpx.Client()" in script
    assert float(coldstart._run(script, ENV).stdout.strip().splitlines()[-1]) > 0


def test_the_projects_own_code_is_compiled_before_timing(tmp_path, monkeypatch):
    own = tmp_path / "own"
    own.mkdir()
    (own / "mod.py").write_text("X = 1\n")
    monkeypatch.setattr(coldstart, "OWN_CODE", (own,))
    coldstart.compile_own_code()
    tag = sys.implementation.cache_tag
    assert (own / "__pycache__" / f"mod.{tag}.pyc").exists()
