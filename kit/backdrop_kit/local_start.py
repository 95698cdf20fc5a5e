"""`backdrop local start`: the local stack with any template parameter, kept running until SIGINT or SIGTERM,
found by name (`--stack backdrop-local`) by every command that talks to AWS, as a deployed stack is.

The parameters are checked as CloudFormation checks them at deploy (each constraint, then the Rules), so a stack
that would not deploy does not start either. One difference is allowed: `WebhookUrl` may be plain http on the
loopback (a receiver on 127.0.0.1), which a deployed API destination would refuse.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backdrop_kit.emulator import EmulatorConfig
from backdrop_kit.runner import Runner
from backdrop_kit.stack import LocalStack, StackOptions
from backdrop_kit.stopping import Stopped
from backdrop_kit.template import load_template

# A receiver on this machine: what `WebhookUrl` may be locally besides the https a deployment needs.
LOOPBACK_URL = re.compile(r"^http://(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\])(:\d{1,5})?(/.*)?$")


def parameter(text: str) -> tuple[str, str]:
    """`Name=value` (the value may be empty or hold '='), for argparse."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(f"{text!r} is not Name=value, e.g. WebhookUrl=http://127.0.0.1:9000/hook")
    return name, value


def check_parameters(given: dict[str, str]) -> list[str]:
    """What a deploy would refuse of these values (Template.parameter_problems), the loopback webhook allowed."""
    checked = dict(given)
    if LOOPBACK_URL.fullmatch(checked.get("WebhookUrl", "")):
        checked["WebhookUrl"] = "https://receiver.invalid/local"  # stands in for the loopback URL, only to check
    return load_template().parameter_problems(checked)


@dataclass
class StartOptions:
    parameters: dict[str, str] = field(default_factory=dict)
    mode: str = "connected"
    latency: float = 0.0
    port: int = 0


def reach(stack: LocalStack) -> dict[str, Any]:
    """How the other commands reach the running stack: the environment to export, its name and its outputs."""
    outputs = {}
    for key, spec in stack.template.raw["Outputs"].items():
        try:
            outputs[key] = str(stack.resolve(spec["Value"]))
        except KeyError:
            continue  # no local meaning (the dashboard)
    webhook = None
    if stack.webhooks:
        first = stack.webhooks[0]
        webhook = {"url": first.endpoint, "header": first.header_name, "secret": first.header_value}
    return {
        "stack": stack.publish(),
        "environment": stack.endpoints(),
        "claid_emulator": stack.emulator.base_url,
        "outputs": outputs,
        "parameters": {k: v for k, v in stack.parameters.items() if k in stack.template.parameters()},
        "webhook": webhook,
    }


def describe(ready: dict[str, Any]) -> str:
    """For a person: how to point a shell at the stack, and the commands that then work."""
    env = " ".join(f"{name}={value}" for name, value in sorted(ready["environment"].items()))
    stack, bucket = ready["stack"], ready["outputs"]["UploadsBucketName"]
    prefix = ready["outputs"].get("UploadPrefix", "incoming/")
    lines = [
        f"backdrop local start: stack {stack} is running (Ctrl-C or SIGTERM stops it)",
        "in another shell, point AWS tools at it:",
        f"  export {env}",
        f"then use it as a deployed stack named {stack}:",
        f"  aws s3 cp photo.png s3://{bucket}/{prefix}photo.png",
        f"  backdrop photo {prefix}photo.png --stack {stack}",
        f"  backdrop usage --stack {stack} --by day",
        f"  backdrop estimate s3://{bucket}/{prefix} --stack {stack}",
        f"  backdrop backfill s3://{bucket}/{prefix} --stack {stack}",
        f"  backdrop review --stack {stack}",
        f"  backdrop replay JobsDLQ --stack {stack}",
    ]
    if ready["webhook"]:
        hook = ready["webhook"]
        lines.append(f"  backdrop webhook ping --stack {stack}")
        lines.append(f"webhook: POST {hook['url']} with {hook['header']}: {hook['secret']}")
    lines.append(f"Claid emulator: {ready['claid_emulator']}")
    return "\n".join(lines)


def run(
    options: StartOptions,
    *,
    announce: Callable[[dict[str, Any]], None],
    progress: Callable[[str], None],
) -> None:
    """Start the stack, announce how to reach it, and process what arrives until SIGINT or SIGTERM (`Stopped`),
    which ends it cleanly: the moto server and the emulator stop with it."""
    stack_options = StackOptions(
        mode=options.mode,
        parameters=options.parameters,
        emulator=EmulatorConfig(latency=options.latency),
        moto_port=options.port,
        monthly_credit_budget=float(options.parameters.get("MonthlyCreditBudget", "0") or 0),
    )
    progress("starting the local stack (moto server + Claid emulator)")
    with LocalStack(stack_options) as stack:
        runner = Runner(stack)
        # The bucket notification's s3:TestEvent is S3's, not an upload: nothing to process.
        stack.client("sqs").purge_queue(QueueUrl=stack.queue_url("JobsQueue"))
        announce(reach(stack))
        stop = threading.Event()
        try:
            runner.drain_until(stop)
        except Stopped as stopped:
            stop.set()
            progress(f"stopping the local stack ({stopped})")


def announce_json(ready: dict[str, Any]) -> None:
    print(json.dumps(ready), flush=True)
