"""The `backdrop` command: demo, local invoke and the emulator offline; usage, redrive and review against AWS."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from backdrop.config import MAX_MONTHLY_CREDIT_BUDGET

from backdrop_kit.arguments import MAX_LATENCY_SECONDS, PORTS, number, printable


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
        print(f"backdrop demo: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.as_json(), indent=2, default=_json_default))
    elif not args.review:
        print_table(result)
    return 0 if all(row.status != "missing" for row in result.jobs) else 1


def cmd_local_invoke(args: argparse.Namespace) -> int:
    from backdrop_kit.local_invoke import local_invoke

    event_path = Path(args.event)
    if not event_path.is_file():
        print(f"backdrop local invoke: no such event file: {event_path}", file=sys.stderr)
        return 2
    try:
        event = json.loads(event_path.read_text())
    except ValueError as exc:
        print(f"backdrop local invoke: {event_path} is not JSON: {exc}", file=sys.stderr)
        return 2
    try:
        report = local_invoke(args.function_id, event, mode=args.mode, progress=_progress)
    except KeyError as exc:
        print(f"backdrop local invoke: {exc.args[0]}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2, default=_json_default))
    return 0 if report.get("error") is None else 1


def cmd_emulator(args: argparse.Namespace) -> int:
    from backdrop_kit.emulator.cli import main as emulator_main

    return emulator_main(args.emulator_args)


def cmd_usage(args: argparse.Namespace) -> int:
    import boto3
    from backdrop.jobs import current_month
    from backdrop.ledger import Ledger

    from backdrop_kit.deployment import DeploymentNotFound, find_deployment
    from backdrop_kit.usage import check_month, draw_chart, rows, table

    budget = args.budget
    try:
        month = check_month(args.month or current_month())
        table_name = args.table
        if args.stack:
            deployment = find_deployment(boto3.client("cloudformation"), args.stack)
            table_name = deployment.output("AppTableName")
            if budget is None:
                env = deployment.processor_environment(boto3.client("lambda"))
                budget = float(env.get("MONTHLY_CREDIT_BUDGET") or 0)
    except (ValueError, DeploymentNotFound) as exc:
        print(f"backdrop usage: {exc}", file=sys.stderr)
        return 2
    usage = Ledger(boto3.client("dynamodb"), table_name).month_usage(month)
    if args.chart:
        draw_chart(usage, budget or 0, Path(args.chart))
        _progress(f"chart: {args.chart}")
    if args.by is None:
        print(json.dumps(usage, indent=2, default=_json_default))
    elif args.json:
        print(json.dumps({"month": month, "by": args.by, "rows": rows(usage, args.by)}, indent=2))
    else:
        print(f"{month}, by {args.by}:")
        print(table(rows(usage, args.by)))
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


def _plan(args: argparse.Namespace, command: str) -> tuple[Any, Any, Any] | int:
    """The stack's deployment, its ledger and the estimate for args.source; an exit code when they cannot be had."""
    import boto3
    from backdrop.config import ConfigError
    from backdrop.ledger import Ledger

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
        ledger = Ledger(
            boto3.client("dynamodb"),
            deployment.output("AppTableName"),
            monthly_budget=float(env.get("MONTHLY_CREDIT_BUDGET", "0") or 0),
        )
        processor = planning_processor(env, s3=boto3.client("s3"), ssm=boto3.client("ssm"), ledger=ledger)
    except (ValueError, DeploymentNotFound, ConfigError) as exc:
        print(f"backdrop {command}: {exc}", file=sys.stderr)
        return 2
    progress = _bar("planning") if not args.quiet else None
    result = estimate(processor, bucket, prefix, latency=args.latency, progress=progress)
    return deployment, ledger, result


def cmd_estimate(args: argparse.Namespace) -> int:
    from backdrop_kit.catalogue import describe

    planned = _plan(args, "estimate")
    if isinstance(planned, int):
        return planned
    _, _, result = planned
    print(json.dumps(result.as_json(), indent=2) if args.json else describe(result))
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    import boto3
    from backdrop.jobs import current_month

    from backdrop_kit.catalogue import BudgetTaken, budget_left, describe, hold_credits, send_jobs

    planned = _plan(args, "backfill")
    if isinstance(planned, int):
        return planned
    deployment, ledger, everything = planned
    result = everything.limited(args.limit)
    report = result.as_json()
    # Reserved credits count as spent: those of jobs queued by an earlier backfill and not processed yet too.
    left = budget_left(ledger, current_month())
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
        held = hold_credits(ledger, result.jobs, progress=None if args.quiet else _bar("reserving"))
    except BudgetTaken as exc:
        report["sent"] = 0
        _emit(json.dumps(report, indent=2))
        print(f"backdrop backfill: {exc}; run it again to see what is left", file=sys.stderr)
        return 1
    for reason, count in held.skipped.items():
        report["skipped"][reason] = report["skipped"].get(reason, 0) + count
    report["to_process"] = len(held.jobs)
    queue_url = deployment.output("JobsQueueUrl")
    report["sent"] = send_jobs(
        boto3.client("sqs"), queue_url, held.jobs, ledger=ledger, progress=None if args.quiet else _bar("sending")
    )
    _emit(json.dumps(report, indent=2))
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    import boto3

    from backdrop_kit.redrive import redrive

    moved = redrive(boto3.client("sqs"), args.dlq_url, args.queue_url, limit=args.limit, progress=_progress)
    print(json.dumps({"moved": moved}))
    return 0


def _connector_from_stack(args: argparse.Namespace) -> tuple[str, str, str, Any]:
    """Bucket, Claid URL, API key and connector key of a deployed stack (each read where the stack keeps it)."""
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
    return deployment.output("UploadsBucketName"), claid_url, api_key, key


def cmd_connect_storage(args: argparse.Namespace) -> int:
    """Registers the uploads bucket with Claid as a storage connector (Claid's storage API)."""
    import os

    import httpx

    from backdrop_kit.connector import ClaidRefused, ConnectorKey, parameter_update, register_storage

    if args.stack:
        try:
            bucket, claid_url, api_key, key = _connector_from_stack(args)
        except LookupError as exc:  # DeploymentNotFound included
            print(f"backdrop connect-storage: {exc}", file=sys.stderr)
            return 2
    else:
        names = ("CLAID_API_KEY", "CLAID_CONNECTOR_ACCESS_KEY_ID", "CLAID_CONNECTOR_SECRET_ACCESS_KEY")
        missing = [n for n in names if not os.environ.get(n)]
        if missing or not args.bucket:
            print(
                f"backdrop connect-storage: give --stack NAME, or --bucket and set {', '.join(missing or names)} "
                "(secrets are read from the environment, never from arguments)",
                file=sys.stderr,
            )
            return 2
        bucket, claid_url, api_key = args.bucket, args.claid_url or "https://api.claid.ai", os.environ[names[0]]
        key = ConnectorKey(os.environ[names[1]], os.environ[names[2]])
    try:
        with httpx.Client() as http:
            data = register_storage(http, claid_url, api_key, name=args.name, bucket=bucket, path=args.path, key=key)
    except (ClaidRefused, httpx.HTTPError) as exc:
        print(f"backdrop connect-storage: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=2))
    print(
        f"now switch the stack to connected storage: {parameter_update(args.stack, args.name, args.path)}",
        file=sys.stderr,
    )
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    """Serve the review page on 127.0.0.1 until Ctrl-C."""
    from botocore.exceptions import BotoCoreError, ClientError

    from backdrop_kit.deployment import DeploymentNotFound
    from backdrop_kit.review import open_review
    from backdrop_kit.review.server import serve_until_interrupted

    try:
        server = open_review(args.stack, port=args.port)
    except (DeploymentNotFound, BotoCoreError, ClientError, OSError) as exc:
        print(f"backdrop review: {exc}", file=sys.stderr)
        return 1
    serve_until_interrupted(
        server,
        url=server.url(days=args.days),
        about=f"stack {args.stack}, as {server.service.actor}",
        open_browser=not args.no_browser,
        progress=_progress,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Every number and text an option takes is checked here (backdrop_kit.arguments), so a bad one is refused
    with its option named and exit code 2 before any command starts a stack or calls AWS."""
    line = printable()
    budget = number(float, at_least=0, at_most=MAX_MONTHLY_CREDIT_BUDGET)
    latency = number(float, at_least=0, at_most=MAX_LATENCY_SECONDS)
    count = number(int, at_least=0)
    parser = argparse.ArgumentParser(prog="backdrop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the whole pipeline offline on photos and show the variants")
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
        help="connected: Claid writes into the bucket; temporary: tmp_urls copied by the recorder",
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
        "--out", type=line, default="out", help="folder for variants and the contact sheet (default: out)"
    )
    demo.add_argument("--json", action="store_true", help="print the result as JSON")
    demo.add_argument("--quiet", action="store_true", help="no progress lines")
    demo.set_defaults(func=cmd_demo)

    local = sub.add_parser("local", help="run handlers locally, like `sam local`, without Docker")
    local_sub = local.add_subparsers(dest="local_command", required=True)
    invoke = local_sub.add_parser("invoke", help="invoke one function from template.yaml with an event file")
    invoke.add_argument("function_id", type=line, help="logical id in template.yaml, e.g. ProcessorFunction")
    invoke.add_argument("--event", "-e", type=line, required=True, help="event JSON file (see events/)")
    invoke.add_argument("--mode", choices=["connected", "temporary"], default="connected")
    invoke.set_defaults(func=cmd_local_invoke)

    emulator = sub.add_parser("emulator", help="serve the Claid emulator in the foreground", add_help=False)
    emulator.add_argument("emulator_args", nargs=argparse.REMAINDER)
    emulator.set_defaults(func=cmd_emulator)

    usage = sub.add_parser("usage", help="credits used in a month (a deployed stack's ledger)")
    where = usage.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", type=line, help="the deployed stack's name (its outputs name the table)")
    where.add_argument("--table", type=line, help="the AppTableName output of the stack")
    usage.add_argument("--month", type=line, help="YYYY-MM (default: this month, UTC)")
    usage.add_argument("--by", choices=["day", "profile", "status"], help="one row per day, profile or status")
    usage.add_argument("--json", action="store_true", help="with --by: print the rows as JSON")
    usage.add_argument(
        "--chart", type=line, metavar="PNG", help="draw credits per day, stacked by profile, into this file"
    )
    usage.add_argument(
        "--budget", type=budget, help="monthly budget for the chart's line (default: the stack's MonthlyCreditBudget)"
    )
    usage.set_defaults(func=cmd_usage)

    redrive = sub.add_parser("redrive", help="move dead letters back to their queue once the cause is fixed")
    redrive.add_argument("--dlq-url", type=line, required=True, help="JobsDLQUrl output of the stack")
    redrive.add_argument("--queue-url", type=line, required=True, help="JobsQueueUrl output of the stack")
    redrive.add_argument("--limit", type=count, default=0, help="move at most this many (0 = all)")
    redrive.set_defaults(func=cmd_redrive)

    for name, text in (
        ("estimate", "what processing existing photos would cost, without calling Claid"),
        ("backfill", "send existing photos through the upload path (same idempotency: never paid twice)"),
    ):
        catalogue = sub.add_parser(name, help=text)
        catalogue.add_argument(
            "source", type=line, help="s3://bucket/prefix of the photos, e.g. s3://shop-uploads/incoming/"
        )
        catalogue.add_argument("--stack", type=line, required=True, help="the deployed stack's name")
        catalogue.add_argument(
            "--latency", type=latency, default=10.0, help="seconds one Claid call takes (default 10)"
        )
        catalogue.add_argument("--json", action="store_true", help="print the result as JSON")
        catalogue.add_argument("--quiet", action="store_true", help="no progress line")
        if name == "backfill":
            catalogue.add_argument("--limit", type=count, default=0, help="send at most this many photos (0 = all)")
            catalogue.add_argument("--dry-run", action="store_true", help="plan and check the budget, send nothing")
            catalogue.set_defaults(func=cmd_backfill)
        else:
            catalogue.set_defaults(func=cmd_estimate)

    review = sub.add_parser("review", help="choose variants to publish in a local web page (127.0.0.1 only)")
    review.add_argument("--stack", type=line, required=True, help="the deployed stack's name")
    review.add_argument(
        "--port",
        type=number(int, at_least=PORTS[0], at_most=PORTS[1]),
        default=0,
        help="port on 127.0.0.1 (default 0: any free port)",
    )
    review.add_argument(
        "--days",
        type=number(int, at_least=1, at_most=90),
        default=7,
        help="show uploads of the last N days (default 7)",
    )
    review.add_argument("--no-browser", action="store_true", help="print the address only; do not open a browser")
    review.set_defaults(func=cmd_review)

    connect = sub.add_parser("connect-storage", help="register the uploads bucket with Claid (storage connector)")
    connect.add_argument(
        "--stack", type=line, help="the deployed stack's name: bucket, API key and connector key read from it"
    )
    connect.add_argument(
        "--name",
        type=printable(min_chars=1, max_chars=50),
        default="backdrop",
        help="connector name (at most 50 characters; default backdrop)",
    )
    connect.add_argument("--bucket", type=line, help="without --stack: the UploadsBucketName output of the stack")
    connect.add_argument(
        "--path", type=line, default="", help="prefix inside the bucket the connector covers (default: all)"
    )
    connect.add_argument(
        "--claid-url", type=line, help="Claid's base URL (default: the stack's ClaidBaseUrl, or api.claid.ai)"
    )
    connect.set_defaults(func=cmd_connect_storage)
    return parser


def main(argv: list[str] | None = None) -> int:
    from backdrop_kit.stopping import Stopped, stopping_on_signals

    argv = sys.argv[1:] if argv is None else argv
    # Every command, not only those that serve until stopped: any of them may run a local stack, whose moto
    # server must stop with it. A command that serves treats the stop as its normal end (exit 0).
    with stopping_on_signals():
        try:
            if argv[:1] == ["emulator"]:  # its options are the emulator's own
                from backdrop_kit.emulator.cli import main as emulator_main

                return emulator_main(argv[1:])
            args = build_parser().parse_args(argv)
            result: Any = args.func(args)
            return int(result)
        except Stopped as stop:
            _progress(f"stopped by {stop}")
            return stop.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
