"""The `backdrop` command. Offline: demo, local start / invoke, the Claid emulator. Against a stack (deployed, or
the local one found by name the same way): usage, estimate, backfill, photo, replay (and redrive), review,
connect-storage and webhook ping.

Every door says what went wrong in one line on stderr and exits 2 (what it was given or needs is wrong or missing)
or 1 (it ran and failed), never with a traceback (backdrop_kit.doors); what a command answers is alone on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from backdrop.config import MAX_MONTHLY_CREDIT_BUDGET

from backdrop_kit.arguments import MAX_LATENCY_SECONDS, PORTS, new_file, number, printable
from backdrop_kit.doors import UsageError


def renditions_argument(text: str) -> str:
    """`--renditions`: the list as the setting reads it (presets expanded), or exit 2 naming the entry."""
    from backdrop.renditions import RenditionError, canonical, parse_renditions

    try:
        return canonical(parse_renditions(text)) or "none"
    except RenditionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _progress(message: str) -> None:
    print(f"[backdrop] {message}", file=sys.stderr, flush=True)


def _emit(text: str) -> None:
    """What a command answers, alone on stdout (a person reads it, a script parses it); progress and logs go to
    stderr."""
    print(text, flush=True)


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def cmd_demo(args: argparse.Namespace) -> int:
    from backdrop_kit.demo import DemoOptions, print_table, run_demo

    options = DemoOptions(
        files=[Path(f) for f in args.files],
        out_dir=Path(args.out),
        number_of_images=args.images,
        output_format=args.format,
        prompt=args.prompt,
        mode=args.mode,
        monthly_credit_budget=args.budget,
        latency=args.latency,
        copies=args.copies,
        seed=args.seed,
        publish=args.publish or ("review" if args.review else None),
        renditions=args.renditions,
    )
    hold = None
    if args.review:
        from backdrop_kit.review.local import review_while_running

        def hold(stack: Any, runner: Any, result: Any) -> None:
            print_table(result)
            review_while_running(stack, runner, open_browser=not args.no_browser, progress=_progress)

    try:
        result = run_demo(options, progress=_progress if not args.quiet else lambda _: None, hold=hold)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        _emit(json.dumps(result.as_json(), indent=2, default=_json_default))
    elif not args.review:
        print_table(result)
    return 0 if all(row.status != "missing" for row in result.jobs) else 1


def cmd_local_invoke(args: argparse.Namespace) -> int:
    from backdrop_kit.local_invoke import local_invoke

    event_path = Path(args.event)
    if not event_path.is_file():
        raise UsageError(f"no such event file: {event_path} (events/ has a sample for each function)")
    try:
        event = json.loads(event_path.read_text())
    except ValueError as exc:
        raise UsageError(f"{event_path} is not JSON: {exc}") from None
    try:
        report = local_invoke(args.function_id, event, mode=args.mode, progress=_progress)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    # The report alone on stdout (the handlers log to stderr: runner.load_function), so `| jq` reads it.
    _emit(json.dumps(report, indent=2, default=_json_default))
    return 0 if report.get("error") is None else 1


def cmd_emulator(args: argparse.Namespace) -> int:
    from backdrop_kit.emulator.cli import main as emulator_main

    return emulator_main(args.emulator_args)


def cmd_local_start(args: argparse.Namespace) -> int:
    from backdrop_kit.local_start import StartOptions, announce_json, check_parameters, describe, run

    given = dict(args.param or [])
    problems = check_parameters(given)
    if problems:
        raise UsageError("a deploy would refuse these parameters:\n  " + "\n  ".join(problems))
    options = StartOptions(parameters=given, mode=args.mode, latency=args.latency, port=args.port)
    announce = announce_json if args.json else (lambda ready: _emit(describe(ready)))
    run(options, announce=announce, progress=_progress)
    _progress("local stack stopped")
    return 0


def _stack_clients(name: str) -> tuple[Any, Any]:
    """The deployment named `name` (CloudFormation) and a boto3 client factory."""
    import boto3

    from backdrop_kit.deployment import find_deployment

    return find_deployment(boto3.client("cloudformation"), name), boto3.client


def cmd_usage(args: argparse.Namespace) -> int:
    import boto3
    from backdrop.jobs import current_month
    from backdrop.store.ledger import DynamoLedger
    from botocore.exceptions import ClientError

    from backdrop_kit.usage import check_month, draw_chart, rows, table

    budget = args.budget
    try:
        month = check_month(args.month or current_month())
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    table_name = args.table
    if args.stack:
        deployment, _ = _stack_clients(args.stack)
        table_name = deployment.output("AppTableName")
        if budget is None:
            env = deployment.processor_environment(boto3.client("lambda"))
            budget = float(env.get("MONTHLY_CREDIT_BUDGET") or 0)
    try:
        usage = DynamoLedger(boto3.client("dynamodb"), table_name).month_usage(month)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            raise UsageError(
                f"no table {table_name!r} in this account and region: give the stack's AppTableName output, or "
                "--stack NAME"
            ) from None
        raise
    if args.chart:
        draw_chart(usage, budget or 0, Path(args.chart))
        _progress(f"chart: {args.chart}")
    if args.by is None:
        _emit(json.dumps(usage, indent=2, default=_json_default))
    elif args.json:
        _emit(json.dumps({"month": month, "by": args.by, "rows": rows(usage, args.by)}, indent=2))
    else:
        _emit(f"{month}, by {args.by}:\n{table(rows(usage, args.by))}")
    return 0


def _bar(label: str) -> Callable[[int, int], None]:
    """A progress line on stderr, rewritten in place."""

    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        end = "\n" if done >= total else ""
        print(
            f"\r[backdrop] {label} [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}",
            end=end,
            file=sys.stderr,
            flush=True,
        )

    return show


def _plan(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """The stack's deployment, its reservations and the estimate for args.source (UsageError when they cannot be
    had)."""
    import boto3
    from backdrop.config import ConfigError
    from backdrop.store.jobs import DynamoJobs
    from backdrop.store.reservations import DynamoReservations

    from backdrop_kit.catalogue import estimate, parse_s3_uri, planning_processor
    from backdrop_kit.deployment import DeploymentNotFound, find_deployment

    try:
        bucket, prefix = parse_s3_uri(args.source)
        deployment = find_deployment(boto3.client("cloudformation"), args.stack)
        if bucket != deployment.output("UploadsBucketName"):
            # The processor reads only its own bucket: photos elsewhere must be copied under incoming/ first.
            raise ValueError(
                f"s3://{bucket} is not the uploads bucket of {args.stack!r} "
                f"({deployment.output('UploadsBucketName')}): copy the photos there under incoming/"
            )
        env = deployment.processor_environment(boto3.client("lambda"))
        dynamodb, table_name = boto3.client("dynamodb"), deployment.output("AppTableName")
        budget = float(env.get("MONTHLY_CREDIT_BUDGET", "0") or 0)
        reservations = DynamoReservations(dynamodb, table_name, monthly_budget=budget)
        records = DynamoJobs(dynamodb, table_name)
        processor = planning_processor(
            env,
            s3=boto3.client("s3"),
            ssm=boto3.client("ssm"),
            events=boto3.client("events"),
            reservations=reservations,
        )
    except (ValueError, DeploymentNotFound, ConfigError) as exc:
        raise UsageError(str(exc)) from None
    progress = _bar("planning") if not args.quiet else None
    # The prices of an image edit are the stack's parameters (Claid publishes none); a stack from before renditions
    # has none, and the template's defaults apply.
    edit, upscale = (float(deployment.parameters.get(name) or default) for name, default in _EDIT_PRICES)
    prices = (edit, upscale)
    result = estimate(processor, records, bucket, prefix, latency=args.latency, progress=progress, edit_prices=prices)
    return deployment, reservations, result


_EDIT_PRICES = (("RenditionEditCredits", 1.0), ("RenditionUpscaleCredits", 2.0))


def cmd_estimate(args: argparse.Namespace) -> int:
    from backdrop_kit.catalogue import describe

    _, _, result = _plan(args)
    _emit(json.dumps(result.as_json(), indent=2) if args.json else describe(result))
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    import boto3
    from backdrop.jobs import current_month
    from backdrop.store.ledger import DynamoLedger

    from backdrop_kit.catalogue import BudgetTaken, budget_left, describe, hold_credits, send_jobs

    deployment, reservations, everything = _plan(args)
    result = everything.limited(args.limit)
    report = result.as_json()
    # Reserved credits count as spent: those of jobs queued by an earlier backfill and not processed yet too.
    ledger = DynamoLedger(boto3.client("dynamodb"), deployment.output("AppTableName"))
    left = budget_left(reservations, ledger, current_month())
    report["budget_left"] = None if left is None else float(left)
    if not args.json:
        print(describe(result), file=sys.stderr)
    # Checked before anything is sent: a backfill that the budget would cut short is refused whole, so a
    # catalogue is never half processed by surprise.
    if left is not None and result.credits > left:
        report["sent"] = 0
        _emit(json.dumps(report, indent=2))
        print(
            f"backdrop backfill: needs up to {result.credits} credits and the monthly budget has {left} left "
            "(credits held for queued jobs count as spent); raise MonthlyCreditBudget, wait for the queued jobs, "
            "or send fewer with --limit",
            file=sys.stderr,
        )
        return 1
    if args.dry_run:
        report["sent"] = 0
        _emit(json.dumps(report, indent=2))
        return 0
    # Each job's credits are reserved before its message is sent (all or none), and the processor finds them
    # held for it: what is queued is promised, and the next backfill sees it (catalogue.hold_credits).
    try:
        held = hold_credits(reservations, result.jobs, progress=None if args.quiet else _bar("reserving"))
    except BudgetTaken as exc:
        report["sent"] = 0
        _emit(json.dumps(report, indent=2))
        print(f"backdrop backfill: {exc}; run it again to see what is left", file=sys.stderr)
        return 1
    if held.skipped:  # held or recorded since it was planned: the report says what is sent
        result = dataclasses.replace(result, jobs=held.jobs, skipped=result.skipped + held.skipped)
        report = {**result.as_json(), "budget_left": report["budget_left"]}
    queue_url = deployment.output("JobsQueueUrl")
    report["sent"] = send_jobs(
        boto3.client("sqs"),
        queue_url,
        held.jobs,
        reservations=reservations,
        progress=None if args.quiet else _bar("sending"),
    )
    _emit(json.dumps(report, indent=2))
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    import boto3

    from backdrop_kit.redrive import RedriveRefused, redrive

    try:
        moved = redrive(boto3.client("sqs"), args.dlq_url, args.queue_url, limit=args.limit, progress=_progress)
    except RedriveRefused as exc:
        raise UsageError(str(exc)) from None
    _emit(json.dumps({"moved": moved}))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from backdrop_kit.redrive import (
        RedriveRefused,
        check_target,
        replay_to_bus,
        replay_to_queue,
        source_queues,
    )

    deployment, client = _stack_clients(args.stack)
    dlqs = {key.removesuffix("Url"): url for key, url in deployment.outputs.items() if key.endswith("DLQUrl")}
    if args.dlq not in dlqs:
        raise UsageError(
            f"stack {args.stack!r} has no dead-letter queue {args.dlq!r}; it has: {', '.join(sorted(dlqs)) or 'none'}"
        )
    sqs, dlq_url = client("sqs"), dlqs[args.dlq]
    sources = source_queues(sqs, dlq_url)
    report: dict[str, Any] = {"dlq": args.dlq, "dry_run": args.dry_run}
    if sources:
        # A queue's DLQ: back to the queue whose redrive policy names it, the message as it was.
        if len(sources) > 1:
            raise UsageError(f"{args.dlq} takes dead letters from {len(sources)} queues: use redrive --queue-url")
        try:
            check_target(sqs, dlq_url, sources[0])
        except RedriveRefused as exc:
            raise UsageError(str(exc)) from None
        report["to"] = {"queue": sources[0]}
        done = replay_to_queue(sqs, dlq_url, sources[0], limit=args.limit, dry_run=args.dry_run, progress=_progress)
    else:
        # An EventBridge target's DLQ: back on the stack's bus, where its events came from.
        bus = deployment.output("EventBusName")
        accepted = {"backdrop", deployment.outputs.get("StorefrontEventSource", "storefront")}
        report["to"] = {"bus": bus}
        done = replay_to_bus(
            sqs,
            client("events"),
            dlq_url,
            bus,
            sources=accepted,
            limit=args.limit,
            dry_run=args.dry_run,
            progress=_progress,
        )
    report.update(done.as_json())
    _emit(json.dumps(report, indent=2))
    for kept in done.kept:
        _progress(f"kept in {args.dlq}: message {kept['message_id']}: {kept['reason']}")
    return 0 if not done.kept else 1


def cmd_photo(args: argparse.Namespace) -> int:
    from backdrop_kit.photo import PhotoNotFound, PhotoStack, describe, photo_key, story

    deployment, client = _stack_clients(args.stack)
    stack = PhotoStack(
        bucket=deployment.output("UploadsBucketName"),
        incoming_prefix=deployment.output("UploadPrefix"),
        table=deployment.output("AppTableName"),
        s3=client("s3"),
        dynamodb=client("dynamodb"),
    )
    try:
        told = story(stack, photo_key(args.photo, stack))
    except (ValueError, PhotoNotFound) as exc:
        raise UsageError(str(exc)) from None
    _emit(json.dumps(told, indent=2, default=_json_default) if args.json else describe(told))
    return 0


def cmd_webhook_ping(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from backdrop_kit.webhook import as_json, ping, watch_dead_letters

    deployment, client = _stack_clients(args.stack)
    if "WebhookDLQUrl" not in deployment.outputs:
        raise UsageError(f"stack {args.stack!r} has no webhook: deploy it with WebhookUrl=https://… first")
    bus = deployment.output("EventBusName")
    try:
        identity: str | None = str(client("sts").get_caller_identity()["Arn"])
    except (BotoCoreError, ClientError):  # who asked is a courtesy in the event, not a reason to stop
        identity = None
    detail = ping(client("events"), bus, requested_by=identity)
    endpoint = deployment.parameters.get("WebhookUrl") or None
    _progress(f"ping {detail.ping_id} is on bus {bus}; the webhook rule POSTs it to {endpoint or 'WebhookUrl'}")
    refused = None
    if args.wait:
        _progress(f"watching the webhook DLQ for {args.wait:g}s (a refused or failing endpoint lands it there)")
        refused = watch_dead_letters(
            client("sqs"), deployment.output("WebhookDLQUrl"), detail.ping_id, seconds=args.wait
        )
    _emit(as_json(detail, bus, endpoint, refused, args.wait))
    if refused is not None:
        _progress(f"the endpoint did not take the ping: {refused}")
        return 1
    return 0


def _connector_from_stack(args: argparse.Namespace) -> tuple[str, str, str, Any, str]:
    """Bucket, Claid URL, API key, connector key and generated prefix of a stack (each read where it is kept)."""
    import os

    import boto3

    from backdrop_kit.connector import connector_key
    from backdrop_kit.deployment import find_deployment

    deployment = find_deployment(boto3.client("cloudformation"), args.stack)
    if "ClaidConnectorSecretArn" not in deployment.outputs:
        raise LookupError(
            f"stack {args.stack!r} has no connector user: deploy it with CreateClaidConnectorUser=true first"
        )
    secrets = boto3.client("secretsmanager")
    claid_url = args.claid_url or deployment.processor_environment(boto3.client("lambda")).get(
        "CLAID_BASE_URL", "https://api.claid.ai"
    )
    api_key = os.environ.get("CLAID_API_KEY") or str(
        secrets.get_secret_value(SecretId=deployment.output("ClaidApiKeySecretArn"))["SecretString"]
    )
    key = connector_key(secrets, deployment.output("ClaidConnectorSecretArn"))
    return deployment.output("UploadsBucketName"), claid_url, api_key, key, deployment.output("GeneratedPrefix")


def cmd_connect_storage(args: argparse.Namespace) -> int:
    """Registers the uploads bucket with Claid as a storage connector (Claid's storage API)."""
    import httpx

    from backdrop_kit.connector import (
        ClaidRefused,
        ConnectorKey,
        check_path,
        parameter_update,
        register_storage,
    )

    if args.stack:
        try:
            bucket, claid_url, api_key, key, generated = _connector_from_stack(args)
        except LookupError as exc:  # DeploymentNotFound included
            raise UsageError(str(exc)) from None
    else:
        names = ("CLAID_API_KEY", "CLAID_CONNECTOR_ACCESS_KEY_ID", "CLAID_CONNECTOR_SECRET_ACCESS_KEY")
        missing = [n for n in names if not os.environ.get(n)]
        if missing or not args.bucket:
            raise UsageError(
                f"give --stack NAME, or --bucket and set {', '.join(missing or names)} "
                "(secrets are read from the environment, never from arguments)"
            )
        bucket, claid_url, api_key = args.bucket, args.claid_url or "https://api.claid.ai", os.environ[names[0]]
        key = ConnectorKey(os.environ[names[1]], os.environ[names[2]])
        generated = args.generated_prefix
    try:
        check_path(args.path, generated)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        with httpx.Client() as http:
            data = register_storage(http, claid_url, api_key, name=args.name, bucket=bucket, path=args.path, key=key)
    except ClaidRefused as exc:
        raise UsageError(str(exc), code=1) from None
    _emit(json.dumps(data, indent=2))
    _progress(f"now switch the stack to connected storage: {parameter_update(args.stack, args.name, args.path)}")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    """Serve the review page on 127.0.0.1 until Ctrl-C."""
    from backdrop_kit.review import open_review
    from backdrop_kit.review.server import serve_until_interrupted

    server = open_review(args.stack, port=args.port)
    serve_until_interrupted(
        server,
        url=server.url(days=args.days),
        about=f"stack {args.stack}, as {server.service.actor}",
        open_browser=not args.no_browser,
        progress=_progress,
    )
    return 0


def _command(
    sub: Any, name: str, *, summary: str, description: str, after: str, func: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    """A subcommand whose --help says what it is for (summary, description), what it needs, and what comes next."""
    command: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=f"{summary[0].upper()}{summary[1:]}.\n\n{description}",
        epilog=f"next: {after}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.set_defaults(func=func)
    return command


STACK_NEEDS = (
    "Needs AWS credentials and a region for the stack's account (or the environment `backdrop local start` prints)."
)


def build_parser() -> argparse.ArgumentParser:
    """Every number and text an option takes is checked here (backdrop_kit.arguments), so a bad one is refused
    with its option named and exit code 2 before any command starts a stack or calls AWS."""
    line = printable()
    budget = number(float, at_least=0, at_most=MAX_MONTHLY_CREDIT_BUDGET)
    latency = number(float, at_least=0, at_most=MAX_LATENCY_SECONDS)
    count = number(int, at_least=0)
    port = number(int, at_least=PORTS[0], at_most=PORTS[1])
    parser = argparse.ArgumentParser(
        prog="backdrop", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = _command(
        sub,
        "demo",
        summary="run the whole pipeline offline on photos and show the variants",
        description="Starts a local stack (moto + the Claid emulator), uploads the photos, waits for every record,\n"
        "and writes the variants and a contact sheet under --out. Needs nothing but this install.",
        after="`backdrop local start` keeps a local stack running for the other commands.",
        func=cmd_demo,
    )
    demo.add_argument("files", nargs="*", type=line, help="product photos (default: the bundled samples)")
    demo.add_argument("--images", type=int, choices=range(1, 5), metavar="1-4", help="variants per photo")
    demo.add_argument("--format", choices=["jpeg", "png", "webp", "avif"], help="output format")
    demo.add_argument(
        "--prompt",
        type=line,
        help="background prompt, any language: set as x-amz-meta-backdrop-prompt, RFC 2047-encoded as S3 stores it",
    )
    demo.add_argument(
        "--mode",
        choices=["connected", "temporary"],
        default="connected",
        help="connected: Claid writes into the bucket; temporary: tmp_urls, copied by the recorder",
    )
    demo.add_argument("--budget", type=budget, default=0, help="monthly credit budget (0 = unlimited)")
    demo.add_argument(
        "--latency",
        type=latency,
        default=0.0,
        help="Claid's median seconds for a one-image call (0 = instant; real Claid takes seconds to tens; "
        f"at most {MAX_LATENCY_SECONDS:g})",
    )
    # Each copy is a row of the contact sheet: a hundred copies of two photos already make an 80-megapixel sheet.
    demo.add_argument(
        "--copies",
        type=number(int, at_least=1, at_most=100),
        default=1,
        help="upload each photo this many times (default 1, at most 100)",
    )
    demo.add_argument("--seed", type=number(int), default=0, help="seed of the emulator's latency draws")
    demo.add_argument(
        "--review",
        action="store_true",
        help="then keep the local stack running and open the review page on it (Ctrl-C stops; implies "
        "--publish review unless given)",
    )
    demo.add_argument("--no-browser", action="store_true", help="with --review: print the page's address only")
    demo.add_argument(
        "--publish",
        choices=["none", "all", "first", "review"],
        help="publishing policy: put the first or all variants at a stable key under published/ (default: none)",
    )
    demo.add_argument(
        "--renditions",
        type=renditions_argument,
        help="storefront sizes of each published image, made by Claid's image edit: e.g. shopify, or "
        "'2048 webp, 800 jpeg, 2000x2500 jpeg canvas' (implies --publish first unless given)",
    )
    demo.add_argument(
        "--out", type=line, default="out", help="folder for variants and the contact sheet (default: out)"
    )
    demo.add_argument("--json", action="store_true", help="print the result as JSON")
    demo.add_argument("--quiet", action="store_true", help="no progress lines")

    local = sub.add_parser(
        "local",
        help="run the stack or one handler on this machine, without Docker or AWS",
        description="Run the stack or one handler on this machine, without Docker or AWS: `local start` keeps the\n"
        "whole stack running for the other commands; `local invoke` runs one handler on one event.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    local_sub = local.add_subparsers(dest="local_command", required=True, metavar="COMMAND")
    start = _command(
        local_sub,
        "start",
        summary="run the local stack with any template parameter until Ctrl-C or SIGTERM",
        description="Builds the stack from what the SAM transform makes of template.yaml, with the parameters\n"
        "given (checked as a deploy checks them; WebhookUrl may be http on 127.0.0.1), publishes it under the\n"
        "name backdrop-local, prints the environment that points AWS tools at it, and processes what arrives.\n"
        "Needs nothing but this install.",
        after="export what it prints in another shell, then use any --stack command with --stack backdrop-local.",
        func=cmd_local_start,
    )
    start.add_argument(
        "--param",
        type=_parameter,
        action="append",
        metavar="NAME=VALUE",
        help="a template parameter, repeatable: --param WebhookUrl=http://127.0.0.1:9000/hook "
        "--param WebhookStatuses=succeeded,failed --param MonthlyCreditBudget=100",
    )
    start.add_argument("--mode", choices=["connected", "temporary"], default="connected", help="Claid's output mode")
    start.add_argument("--latency", type=latency, default=0.0, help="the emulator's median seconds per call")
    start.add_argument(
        "--port",
        type=port,
        default=0,
        help="the AWS endpoints' port on 127.0.0.1, and the next one for DynamoDB, Secrets Manager and SSM "
        "(0: any free ones)",
    )
    start.add_argument("--json", action="store_true", help="print how to reach it as one JSON line")
    invoke = _command(
        local_sub,
        "invoke",
        summary="invoke one function from template.yaml with an event file, like `sam local invoke`",
        description="Starts a fresh local stack, seeds the photos the event names, runs the handler with a real\n"
        "deadline and prints a JSON report (its answer, events, records, objects, notifications) alone on\n"
        "stdout; the handler's logs go to stderr. Needs nothing but this install.",
        after="pipe the report to jq; events/ has sample events for each function.",
        func=cmd_local_invoke,
    )
    invoke.add_argument("function_id", type=line, help="logical id in template.yaml, e.g. ProcessorFunction")
    invoke.add_argument("--event", "-e", type=line, required=True, help="event JSON file (see events/)")
    invoke.add_argument("--mode", choices=["connected", "temporary"], default="connected")

    # Its options are the emulator's own (main() hands them over before this parser reads them); here for --help.
    _command(
        sub,
        "emulator",
        summary="serve the Claid emulator in the foreground until Ctrl-C",
        description="Claid's AI Background and storage API on 127.0.0.1, for a client of your own.\n"
        "Options: `backdrop emulator --help`.",
        after="point a Claid client at the address it prints.",
        func=cmd_emulator,
    )

    usage = _command(
        sub,
        "usage",
        summary="credits used in a month, from a stack's ledger",
        description="Reads the month's ledger (exact, per day, profile and status) and can draw the month's\n"
        f"cumulative credits against the budget. {STACK_NEEDS}",
        after="`backdrop estimate` says what a backfill would add.",
        func=cmd_usage,
    )
    where = usage.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", type=line, help="the stack's name (its outputs name the table)")
    where.add_argument("--table", type=line, help="the AppTableName output of the stack")
    usage.add_argument("--month", type=line, help="YYYY-MM (default: this month, UTC)")
    usage.add_argument("--by", choices=["day", "profile", "status"], help="one row per day, profile or status")
    usage.add_argument("--json", action="store_true", help="with --by: print the rows as JSON")
    usage.add_argument(
        "--chart",
        type=new_file(".png"),
        metavar="PNG",
        help="draw the month's cumulative credits against the budget into this PNG (its folder must exist)",
    )
    usage.add_argument(
        "--budget", type=budget, help="monthly budget for the chart's line (default: the stack's MonthlyCreditBudget)"
    )

    redrive = _command(
        sub,
        "redrive",
        summary="move a queue's dead letters back to that queue once the cause is fixed",
        description="Sends each message the DLQ holds now back to its source queue, then deletes it; refuses a\n"
        "queue that is the DLQ itself or does not send its dead letters there. "
        f"{STACK_NEEDS}",
        after="`backdrop replay DLQ --stack NAME` does the same for every DLQ of a stack, by name.",
        func=cmd_redrive,
    )
    redrive.add_argument("--dlq-url", type=line, required=True, help="JobsDLQUrl output of the stack")
    redrive.add_argument("--queue-url", type=line, required=True, help="JobsQueueUrl output of the stack")
    redrive.add_argument("--limit", type=count, default=0, help="move at most this many (0 = all)")

    replay = _command(
        sub,
        "replay",
        summary="send what a stack's dead-letter queue holds back where it came from",
        description="JobsDLQ: each S3 notification back to the jobs queue. RecorderDLQ, PublisherDLQ, WebhookDLQ:\n"
        "each event back on the stack's bus (unwrapped from Lambda's invocation record), source, detail-type\n"
        "and detail as they were; EventBridge gives it a new id and time. Only what the DLQ held when the run\n"
        "started; what cannot go back stays, with the reason. "
        f"{STACK_NEEDS}",
        after="`backdrop photo KEY --stack NAME` shows what came of a photo.",
        func=cmd_replay,
    )
    replay.add_argument("dlq", type=line, metavar="DLQ", help="JobsDLQ, RecorderDLQ, PublisherDLQ or WebhookDLQ")
    replay.add_argument("--stack", type=line, required=True, help="the stack's name")
    replay.add_argument("--limit", type=count, default=0, help="replay at most this many (0 = all)")
    replay.add_argument("--dry-run", action="store_true", help="count what would go back; move nothing")

    for name, summary, description, after in (
        (
            "estimate",
            "what processing existing photos would cost, without calling Claid",
            "Plans every object under the prefix as the deployed processor would (its environment and profiles)\n"
            "and says the photos, images, credits and time it would take; skips what is processed or in flight.",
            "`backdrop backfill` with the same arguments sends them.",
        ),
        (
            "backfill",
            "send existing photos through the upload path, never paid twice",
            "Plans as estimate does, reserves each photo's credits in the ledger (all or none, under the\n"
            "budget: what is queued counts), then queues one S3 notification per photo for the processor.",
            "`backdrop usage --stack NAME` and `backdrop photo KEY --stack NAME` follow them.",
        ),
    ):
        catalogue = _command(
            sub,
            name,
            summary=summary,
            description=f"{description} {STACK_NEEDS}",
            after=after,
            func=cmd_backfill if name == "backfill" else cmd_estimate,
        )
        catalogue.add_argument(
            "source", type=line, help="s3://bucket/prefix of the photos, e.g. s3://shop-uploads/incoming/"
        )
        catalogue.add_argument("--stack", type=line, required=True, help="the stack's name")
        catalogue.add_argument(
            "--latency", type=latency, default=10.0, help="seconds one Claid call takes (default 10)"
        )
        catalogue.add_argument("--json", action="store_true", help="print the result as JSON")
        catalogue.add_argument("--quiet", action="store_true", help="no progress line")
        if name == "backfill":
            catalogue.add_argument("--limit", type=count, default=0, help="send at most this many photos (0 = all)")
            catalogue.add_argument("--dry-run", action="store_true", help="plan and check the budget, send nothing")

    photo = _command(
        sub,
        "photo",
        summary="a photo's story: its versions, jobs, refusals, credits and what is published",
        description="Reads each version of the photo, the job and refusals recorded for it, the credits held for a\n"
        f"job in flight, and the photo's stable keys (and renditions), checked to be there. {STACK_NEEDS}",
        after="`backdrop backfill` sends a refused photo again once the cause is fixed.",
        func=cmd_photo,
    )
    photo.add_argument("photo", type=line, help="its key, e.g. incoming/summer/cup.png (or s3://bucket/key)")
    photo.add_argument("--stack", type=line, required=True, help="the stack's name")
    photo.add_argument("--json", action="store_true", help="print the story as JSON")

    review = _command(
        sub,
        "review",
        summary="choose variants to publish in a local web page (127.0.0.1 only)",
        description=f"Serves the review page on this machine with your own AWS identity until Ctrl-C. {STACK_NEEDS}",
        after="the choices appear as Variants Published events (and at the stable keys).",
        func=cmd_review,
    )
    review.add_argument("--stack", type=line, required=True, help="the stack's name")
    review.add_argument("--port", type=port, default=0, help="port on 127.0.0.1 (default 0: any free port)")
    review.add_argument(
        "--days",
        type=number(int, at_least=1, at_most=90),
        default=7,
        help="show uploads of the last N days (default 7)",
    )
    review.add_argument("--no-browser", action="store_true", help="print the address only; do not open a browser")

    connect = _command(
        sub,
        "connect-storage",
        summary="register the uploads bucket with Claid as a storage connector",
        description="Hands Claid the connector user's key (read from the stack, or from the environment), so that\n"
        "Claid writes variants straight into the bucket. The connector's path must cover the generated prefix.\n"
        "With --stack, the stack needs CreateClaidConnectorUser=true; without, set CLAID_API_KEY,\n"
        "CLAID_CONNECTOR_ACCESS_KEY_ID and CLAID_CONNECTOR_SECRET_ACCESS_KEY. Secrets are never arguments.",
        after="run the deploy command it prints (ClaidStorageName, ClaidStoragePrefix).",
        func=cmd_connect_storage,
    )
    connect.add_argument("--stack", type=line, help="the stack's name: bucket, API key and connector key read from it")
    connect.add_argument(
        "--name",
        type=_connector_name,
        default="backdrop",
        help="connector name: 1-50 of A-Z a-z 0-9 _ . - (it names storage://NAME/...; default backdrop)",
    )
    connect.add_argument("--bucket", type=line, help="without --stack: the UploadsBucketName output of the stack")
    connect.add_argument(
        "--path",
        type=line,
        default="",
        help="the connector's path in the bucket: '' (the whole bucket, the default) or the generated prefix",
    )
    connect.add_argument(
        "--generated-prefix",
        type=line,
        default="generated/",
        help="without --stack: the stack's GeneratedPrefix (default generated/)",
    )
    connect.add_argument(
        "--claid-url", type=line, help="Claid's base URL (default: the stack's ClaidBaseUrl, or api.claid.ai)"
    )

    webhook = sub.add_parser(
        "webhook",
        help="try the storefront webhook",
        description="Try the storefront webhook of a stack deployed with WebhookUrl.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    webhook_sub = webhook.add_subparsers(dest="webhook_command", required=True, metavar="COMMAND")
    ping = _command(
        webhook_sub,
        "ping",
        summary="send a test event to the webhook through its own path, with its header",
        description="Puts a `Webhook Ping` event on the stack's bus; the webhook rule POSTs it to WebhookUrl\n"
        "through the API destination, with the X-Backdrop-Webhook-Secret header, as every webhook event.\n"
        f"Prints its ping_id; --wait watches the webhook DLQ for a refusal. {STACK_NEEDS}",
        after="check the endpoint received detail.ping_id; `backdrop replay WebhookDLQ` resends what it refused.",
        func=cmd_webhook_ping,
    )
    ping.add_argument("--stack", type=line, required=True, help="the stack's name")
    ping.add_argument(
        "--wait",
        type=number(float, at_least=0, at_most=300),
        default=0.0,
        help="seconds to watch the webhook DLQ for the ping (a refusal lands there; default 0: do not wait)",
    )
    return parser


def _connector_name(text: str) -> str:
    from backdrop_kit.connector import check_name

    try:
        return check_name(printable(min_chars=1, max_chars=50)(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parameter(text: str) -> tuple[str, str]:
    from backdrop_kit.local_start import parameter

    try:
        return parameter(printable()(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    from backdrop_kit.doors import FAILED, explain
    from backdrop_kit.stopping import Stopped, stopping_on_signals

    argv = sys.argv[1:] if argv is None else argv
    if os.environ.get("AWS_REGION") and not os.environ.get("AWS_DEFAULT_REGION"):
        # The AWS CLI and newer SDKs read AWS_REGION; boto3 reads AWS_DEFAULT_REGION only: honour either.
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"]
    # Every command, not only those that serve until stopped: any of them may run a local stack, whose moto
    # server must stop with it. A command that serves treats the stop as its normal end (exit 0).
    with stopping_on_signals():
        name = "backdrop"
        try:
            if argv[:1] == ["emulator"]:  # its options are the emulator's own
                from backdrop_kit.emulator.cli import main as emulator_main

                return emulator_main(argv[1:])
            args = build_parser().parse_args(argv)
            words = (args.command, getattr(args, "local_command", None), getattr(args, "webhook_command", None))
            name = " ".join(["backdrop", *[w for w in words if w]])
            result: Any = args.func(args)
            return int(result)
        except Stopped as stop:
            _progress(f"stopped by {stop}")
            return stop.exit_code
        except Exception as exc:
            if os.environ.get("BACKDROP_DEBUG"):
                raise
            said = explain(exc)
            if said is None:  # a bug: say it in one line, and how to see the traceback
                print(
                    f"{name}: unexpected error: {type(exc).__name__}: {exc} (BACKDROP_DEBUG=1 shows the traceback)",
                    file=sys.stderr,
                )
                return FAILED
            message, code = said
            print(f"{name}: {message}", file=sys.stderr)
            return code


if __name__ == "__main__":
    raise SystemExit(main())
