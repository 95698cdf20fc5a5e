"""Every door of the `backdrop` command: each command, with a wrong argument, a resource that is not there, no
region, no credentials, says what is wrong and what to do on stderr, exits 2 (what it was given or needs) or 1 (it
ran and failed), prints nothing on stdout, and shows no traceback; its --help says what it is for, what it needs and
what comes next; machine output is alone on stdout. Against one local stack found by name, as a deployed one is."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from backdrop_kit import cli
from backdrop_kit.stack import LocalStack, StackOptions

ROOT = Path(__file__).resolve().parents[2]
BACKDROP = Path(sys.executable).with_name("backdrop")
EVENT = str(ROOT / "events" / "sqs-s3-put.json")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # No webhook and no connector user: a door to a feature the stack does not have is a door too.
    with LocalStack(StackOptions()) as local:
        local.publish()
        yield local


def leaf_commands() -> list[tuple[str, ...]]:
    """Every command the parser knows, subcommands included: the walk below must cover each."""
    found: list[tuple[str, ...]] = []

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found.append(path)
        for action in subs:
            for name, child in action.choices.items():
                walk(child, (*path, name))

    walk(cli.build_parser(), ())
    return found


def run(capsys, argv: list[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's own refusal (or --help)
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, argv: list[str], code: int, *says: str) -> str:
    got, out, err = run(capsys, argv)
    assert got == code, f"{argv}: exit {got}, wanted {code}\n{err}"
    assert "Traceback" not in err and "unexpected error" not in err, err
    assert out == "", f"{argv}: a refused command printed on stdout: {out}"
    for said in says:
        assert said in err, f"{argv}: {said!r} not in {err!r}"
    return err


def test_every_command_says_what_it_is_for_needs_and_what_comes_next(capsys):
    commands = leaf_commands()
    assert {"usage", "photo", "replay", "redrive", "backfill", "estimate"} <= {c[0] for c in commands}
    assert ("local", "start") in commands and ("webhook", "ping") in commands
    for command in commands:
        code, out, _ = run(capsys, [*command, "--help"])
        assert code == 0, command
        assert "next:" in out, f"{command}: --help says nothing of what comes next"
        summary = out.split("\n\n")[1]
        assert len(summary) > 20, f"{command}: --help says nothing of what it is for"


def test_an_unknown_option_is_refused_by_every_command(capsys):
    for command in leaf_commands():
        # argparse names what is missing before what is unknown: either way, the command's usage and an error.
        err = refused(capsys, [*command, "--no-such-option"], 2, "usage: backdrop", "error: ")
        assert any(
            said in err
            for said in (
                "unrecognized arguments: --no-such-option",
                "the following arguments are required",
                "one of the arguments --stack --table is required",
            )
        ), err


MISSING = [
    (["usage", "--table", "nope"], 2, "no table 'nope' in this account and region"),
    (["usage", "--stack", "nope"], 2, "no stack named 'nope'"),
    (["estimate", "s3://b/incoming/", "--stack", "nope"], 2, "no stack named 'nope'"),
    (["backfill", "s3://b/incoming/", "--stack", "nope"], 2, "no stack named 'nope'"),
    (["backfill", "s3://another-shop/incoming/", "--stack", "backdrop-local"], 2, "is not the uploads bucket of"),
    (["photo", "incoming/nope.png", "--stack", "backdrop-local"], 2, "has never held an object"),
    (["photo", "generated/x/y.jpeg", "--stack", "backdrop-local"], 2, "is not under incoming/"),
    (["photo", "incoming/x.png", "--stack", "nope"], 2, "no stack named 'nope'"),
    (["replay", "NoSuchDLQ", "--stack", "backdrop-local"], 2, "has no dead-letter queue 'NoSuchDLQ'; it has: JobsDLQ"),
    (["replay", "JobsDLQ", "--stack", "nope"], 2, "no stack named 'nope'"),
    (["review", "--stack", "nope", "--no-browser"], 2, "no stack named 'nope'"),
    (["connect-storage", "--stack", "backdrop-local"], 2, "has no connector user"),
    (["connect-storage", "--stack", "nope"], 2, "no stack named 'nope'"),
    (["connect-storage"], 2, "give --stack NAME, or --bucket and set CLAID_API_KEY"),
    (["webhook", "ping", "--stack", "backdrop-local"], 2, "has no webhook: deploy it with WebhookUrl"),
    (["webhook", "ping", "--stack", "nope"], 2, "no stack named 'nope'"),
    (["local", "invoke", "ProcessorFunction", "--event", "no-such-event.json"], 2, "no such event file"),
    (["local", "start", "--param", "WebhookStatuses=success,failed"], 2, "'success' not allowed; choose from"),
    (["local", "start", "--param", "ClaidStoragePrefix=incoming/"], 2, "ConnectorCoversTheGeneratedPrefix"),
    (["local", "start", "--param", "Nope=1"], 2, "Nope: template.yaml has no such parameter"),
    (["local", "start", "--param", "WebhookUrl=http://shop.example/hook"], 2, "WebhookUrl="),
    (["demo", "no-such-photo.png"], 2, "no such file: no-such-photo.png"),
]


@pytest.mark.parametrize(("argv", "code", "says"), MISSING, ids=[" ".join(m[0])[:50] for m in MISSING])
def test_a_missing_resource_is_said_plainly(stack, capsys, argv, code, says):
    refused(capsys, argv, code, says)


def test_redrive_refuses_a_target_that_is_not_the_source_of_the_dlq(stack, capsys):
    jobs_dlq, queue = stack.queue_url("JobsDLQ"), stack.queue_url("JobsQueue")
    stack.client("sqs").send_message(QueueUrl=jobs_dlq, MessageBody="{}")
    refused(capsys, ["redrive", "--dlq-url", jobs_dlq, "--queue-url", jobs_dlq], 2, "is the dead-letter queue itself")
    recorder_dlq = stack.queue_url("RecorderDLQ")
    refused(
        capsys,
        ["redrive", "--dlq-url", jobs_dlq, "--queue-url", recorder_dlq],
        2,
        "does not send its dead letters to",
        f"source queues: {queue}",
    )
    gone = queue.rsplit("/", 1)[0] + "/no-such-queue"
    refused(capsys, ["redrive", "--dlq-url", gone, "--queue-url", queue], 2, "no such queue")
    # Nothing moved: the dead letter is where it was.
    assert (
        stack.client("sqs").get_queue_attributes(QueueUrl=jobs_dlq, AttributeNames=["All"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "1"
    )


def test_connect_storage_refuses_a_path_claid_cannot_write_through(stack, capsys, monkeypatch):
    for name in ("CLAID_API_KEY", "CLAID_CONNECTOR_ACCESS_KEY_ID", "CLAID_CONNECTOR_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "x")
    argv = ["connect-storage", "--bucket", stack.uploads_bucket, "--claid-url", stack.emulator.base_url]
    err = refused(capsys, [*argv, "--path", "incoming/"], 2, "--path 'incoming/' does not cover generated/")
    assert "--path ''" in err and "--path generated/" in err
    assert stack.emulator.connectors.get("backdrop") is None  # nothing was registered


AWS_FACING = [
    ["usage", "--stack", "shop"],
    ["usage", "--table", "t"],
    ["estimate", "s3://b/incoming/", "--stack", "shop"],
    ["backfill", "s3://b/incoming/", "--stack", "shop"],
    ["redrive", "--dlq-url", "https://sqs.eu-west-1.amazonaws.com/1/d", "--queue-url", "https://sqs.x/1/q"],
    ["replay", "JobsDLQ", "--stack", "shop"],
    ["photo", "incoming/x.png", "--stack", "shop"],
    ["review", "--stack", "shop", "--no-browser"],
    ["connect-storage", "--stack", "shop"],
    ["webhook", "ping", "--stack", "shop"],
]


@pytest.fixture
def no_aws(monkeypatch, tmp_path):
    """A shell with no AWS configuration at all: no region, no credentials, no profile, no endpoint."""
    for name in {*os.environ, "AWS_DEFAULT_REGION"}:  # the CLI may set that one from AWS_REGION: undone after
        if name.startswith("AWS_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to find either
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # a fresh session reads the environment again


def test_every_aws_facing_command_says_when_there_is_no_region_or_no_credentials(no_aws, capsys, monkeypatch):
    walked = {tuple(w for w in argv if not w.startswith("-"))[:1] for argv in AWS_FACING}
    assert {("usage",), ("estimate",), ("backfill",), ("redrive",), ("replay",), ("photo",)} <= walked
    for argv in AWS_FACING:
        refused(capsys, argv, 2, "no AWS region is set: set AWS_REGION or AWS_DEFAULT_REGION", "backdrop local start")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    for argv in AWS_FACING:
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
        refused(capsys, argv, 2, "no AWS credentials were found: set AWS_PROFILE")


def test_the_real_command_says_it_too(no_aws):
    """The installed entry point, as a person runs it: the same one line, no traceback."""
    done = subprocess.run(
        [str(BACKDROP), "usage", "--stack", "shop"], capture_output=True, text=True, env=dict(os.environ), timeout=120
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("backdrop usage: no AWS region is set") and "Traceback" not in done.stderr


def test_local_invoke_prints_its_report_alone_on_stdout():
    """As a person pipes it into jq: the installed command, its stdout the report alone, the handler's logs on
    stderr (in a process of its own: a logger keeps the stream it was made with)."""
    done = subprocess.run(
        [str(BACKDROP), "local", "invoke", "ProcessorFunction", "--event", EVENT],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # nothing else on stdout
    assert report["function"] == "ProcessorFunction" and report["events_on_bus"]
    assert '"generation outcome"' in done.stderr and "Traceback" not in done.stderr
