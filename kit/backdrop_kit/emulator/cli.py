"""`backdrop emulator`: serve the Claid emulator in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import threading

from backdrop_kit.arguments import MAX_LATENCY_SECONDS, PORTS, comma_separated, number, printable
from backdrop_kit.emulator.server import ClaidEmulator, EmulatorConfig

FAULT_KINDS = ("500", "429", "slow", "drop", "lost")


def main(argv: list[str] | None = None) -> int:
    # Numbers and text are checked as they are read (backdrop_kit.arguments): a bad one exits 2 with its option named.
    line = printable()
    parser = argparse.ArgumentParser(
        prog="backdrop emulator",
        description=f"{__doc__}\n\nClaid's AI Background, image edit and storage API on this machine, for a Claid "
        "client of your own. Needs nothing but this install.",
        epilog="next: point your client's Claid base URL at the address it prints; `backdrop demo` and `backdrop "
        "local start` run one of their own.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", type=line, default="127.0.0.1")
    parser.add_argument(
        "--port", type=number(int, at_least=PORTS[0], at_most=PORTS[1]), default=0, help="0 = a free port (printed)"
    )
    parser.add_argument(
        "--api-key", type=line, action="append", help="accepted API key (repeatable; default local-test-key)"
    )
    parser.add_argument(
        "--credits", type=number(float, at_least=0), default=None, help="account balance (default: unlimited)"
    )
    parser.add_argument("--rate-per-second", type=number(int, at_least=0), default=4, help="0 = no limit")
    parser.add_argument("--rate-per-minute", type=number(int, at_least=0), default=120, help="0 = no limit")
    parser.add_argument(
        "--fault-rate", type=number(float, at_least=0, at_most=1), default=0.0, help="share of calls that fail, 0-1"
    )
    parser.add_argument(
        "--fault-kinds",
        type=comma_separated(FAULT_KINDS),
        default="500,429,slow,drop",
        help="comma-separated: 500, 429, slow, drop (no answer, nothing charged), lost (charged, answer lost)",
    )
    parser.add_argument(
        "--latency",
        type=number(float, at_least=0, at_most=MAX_LATENCY_SECONDS),
        default=0.0,
        help="median seconds of a one-image call; more images, preference best and v2 take longer (0 = instant)",
    )
    # A spread of 1 already puts the longest call at 22 times the median (latency.py's truncated tail).
    parser.add_argument(
        "--latency-sigma",
        type=number(float, at_least=0, at_most=1),
        default=0.25,
        help="spread of the log-normal latency, 0-1",
    )
    parser.add_argument("--seed", type=number(int), default=0)
    parser.add_argument("--s3-endpoint-url", type=line, default=None, help="S3 endpoint for storage connectors")
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        api_keys=frozenset(args.api_key or ["local-test-key"]),
        credits=args.credits,
        rate_per_second=args.rate_per_second,
        rate_per_minute=args.rate_per_minute,
        fault_rate=args.fault_rate,
        fault_kinds=args.fault_kinds,
        seed=args.seed,
        latency=args.latency,
        latency_sigma=args.latency_sigma,
        s3_endpoint_url=args.s3_endpoint_url,
        host=args.host,
        port=args.port,
    )
    emulator = ClaidEmulator(config)
    emulator.log = lambda line: print(line, flush=True)
    url = emulator.start()
    try:
        # Inside the try: a stop that arrives as soon as the address is out is the ordinary stop.
        print(f"Claid emulator on {url} (POST /v1-ea/scene/create); Ctrl-C to stop", flush=True)
        if args.latency:
            model = emulator.latency
            print(
                f"latency: median {args.latency:g}s for one image, p99 {model.percentile_99():.1f}s; "
                f"4 images: median {args.latency * model.shape(4):.1f}s, p99 {model.percentile_99(4):.1f}s",
                flush=True,
            )
        threading.Event().wait()
    except KeyboardInterrupt:  # Ctrl-C, or SIGINT/SIGTERM through the CLI's handlers (backdrop_kit.stopping)
        print("stopping", file=sys.stderr)
    finally:
        emulator.stop()
    return 0
