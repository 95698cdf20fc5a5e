"""`make bench`: measures, in one run on the local stack, what the design promises, and writes docs/benchmarks.md
(with docs/benchmarks-in-flight.png). Measures:

1. the local stack's own ceiling (no latency, no limits), so the burst below can be read against it;
2. a 1,000-upload burst with Claid's latency and rate limits, time-scaled (bench/burst.py), against the bounds of
   bench/bounds.py; the same burst, smaller, with the shared limiter off;
3. each function's cold start against a bare `import boto3` (bench/coldstart.py);
4. image bytes through each function and the recorder's time, connected storage and temporary bucket, and the
   processor's memory against upload size (bench/modes.py);
5. a cost model per 1,000 images (bench/cost.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from backdrop_kit.stack import LocalStack, StackOptions

from bench import burst, coldstart, modes, report


def _say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=1000, help="uploads in the burst (default 1000)")
    parser.add_argument("--scale", type=int, default=report.DEFAULT_SCALE, help="time scale k (default %(default)s)")
    parser.add_argument("--latency", type=float, default=10.0, help="Claid's median seconds, unscaled")
    parser.add_argument("--unpaced-uploads", type=int, default=200, help="burst size with the shared limiter off")
    parser.add_argument("--ceiling-uploads", type=int, default=100, help="uploads for the local stack's ceiling")
    parser.add_argument("--no-write", action="store_true", help="print the report; leave docs/ alone")
    args = parser.parse_args(argv)
    began = time.monotonic()
    load_before = os.getloadavg()[0]

    _say(f"local stack ceiling: {args.ceiling_uploads} uploads, no latency, no limits")
    ceiling = burst.run(
        burst.BurstConfig(
            uploads=args.ceiling_uploads,
            scale=1,
            median_latency=0,
            per_second=0,
            per_minute=0,
            shared_limiter=False,
            settle_seconds=5,  # a call that went unanswered must not hold the rate measure for 10 minutes
        ),
        progress=False,
    )
    _say(json.dumps(burst.summary(ceiling)))
    burst.dump(ceiling, report.RAW / "ceiling.json")

    paced_config = burst.BurstConfig(uploads=args.uploads, scale=args.scale, median_latency=args.latency)
    _say(f"burst: {paced_config}")
    paced = burst.run(paced_config)
    _say(json.dumps(burst.summary(paced)))
    burst.dump(paced, report.RAW / "burst.json")

    unpaced_config = burst.BurstConfig(
        uploads=args.unpaced_uploads, scale=args.scale, median_latency=args.latency, shared_limiter=False
    )
    _say(f"burst without the shared limiter: {unpaced_config}")
    unpaced = burst.run(unpaced_config)
    _say(json.dumps(burst.summary(unpaced)))
    burst.dump(unpaced, report.RAW / "burst-unpaced.json")

    _say("cold starts")
    with LocalStack(StackOptions(log_level="ERROR")) as stack:
        cold = coldstart.measure(stack)
    _say(coldstart.summary(cold))

    _say("connected storage and temporary bucket: bytes and recorder time")
    connected = modes.run_mode("connected")
    temporary = modes.run_mode("temporary")
    _say("processor memory against upload size")
    small, large = modes.memory_by_upload_size()

    text = report.render(
        report.Measures(
            ceiling=ceiling,
            paced=paced,
            unpaced=unpaced,
            cold=cold,
            connected=connected,
            temporary=temporary,
            memory_small=small,
            memory_large=large,
            wall_seconds=time.monotonic() - began,
            load=(load_before, os.getloadavg()[0]),
        ),
        write=not args.no_write,
    )
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
