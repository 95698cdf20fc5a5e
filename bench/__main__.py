"""`make bench`: measures, in one run on the local stack, what the design promises, and writes docs/benchmarks.md
(with docs/benchmarks-in-flight.png). Measures:

1. the local stack's own ceiling (no latency, no limits), so the burst below can be read against it;
2. a 1,000-upload burst with Claid's latency and rate limits (bench/burst.py), against the bounds of
   bench/bounds.py, and the sizing model (bench/model.py) calibrated on it and shown beside it;
3. each function's cold start against its floor (bench/coldstart.py);
4. image bytes through each function and the recorder's time, connected storage and temporary bucket, and the
   processor's memory against upload size (bench/modes.py);
5. a cost model per 1,000 images (bench/cost.py), and a 100,000-photo backfill from the model (bench/sizing.py).

Time budget (a quiet 2-core machine, once the local stack reaches its 8/s ceiling):

| step | full | --quick |
|---|---|---|
| ceiling: 1,000 uploads (200 quick), no latency, no limits, at >= 8/s | ~2.2 min | ~0.6 min |
| burst: 1,000 uploads at k = 1 (bound 499 s; 120 quick, bound ~70 s) | ~8.7 min | ~1.4 min |
| cold starts: 4 functions x 7 pairs (3 quick) of fresh interpreters | ~0.6 min | ~0.3 min |
| bytes and memory (modes): two small stacks of 6 uploads (2 quick) | ~0.5 min | ~0.3 min |
| model: calibration and the 100,000-photo backfill | ~0.5 min | ~0.5 min |
| total | ~12.5 min | ~3 min |

The burst's bound (499 s) and the ceiling's 1,000 uploads at 8/s (125 s) alone make 10.4 minutes, so the full run
cannot fit in 10 minutes with both at those sizes: `--ceiling-uploads` trades the ceiling's length for time.

Opt-in comparisons, each keeping its last result in docs/benchmarks.md:
- `python -m bench compare limiter`: the burst with the shared limiter on and off (200 uploads each, ~4 min);
- `python -m bench compare shapes`: the processor's shapes in the model, on the same drawn latencies (seconds).
A shape is measured on the real stack with `--param`, e.g. `python -m bench --param ProcessorBatchSize=1`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from backdrop_kit.stack import LocalStack, StackOptions

from bench import burst, coldstart, markdown, model, modes, report, sizing

QUICK = {"uploads": 120, "ceiling_uploads": 200, "repetitions": 3, "jobs": 2}


def _say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def _parameter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller measures, about 3 minutes")
    parser.add_argument("--uploads", type=int, help="uploads in the burst (default 1000; quick 120)")
    parser.add_argument("--scale", type=int, default=report.DEFAULT_SCALE, help="time scale k (default %(default)s)")
    parser.add_argument("--latency", type=float, default=10.0, help="Claid's median seconds, unscaled")
    parser.add_argument("--ceiling-uploads", type=int, help="uploads for the local stack's ceiling (default 1000)")
    parser.add_argument(
        "--param", type=_parameter, action="append", default=[], help="a template parameter for the burst, NAME=VALUE"
    )
    parser.add_argument("--no-write", action="store_true", help="print the report; leave docs/ alone")
    sub = parser.add_subparsers(dest="command")
    limiter = sub.add_parser("compare", help="an opt-in comparison: limiter (on the stack) or shapes (the model)")
    limiter.add_argument("what", choices=("limiter", "shapes"))
    limiter.add_argument("--compare-uploads", type=int, default=200, help="uploads per burst (limiter)")
    args = parser.parse_args(argv)
    if args.command == "compare":
        return _compare(args)
    return _full(args)


def _full(args: argparse.Namespace) -> int:
    began = time.monotonic()
    load_before = os.getloadavg()[0]
    uploads = args.uploads or (QUICK["uploads"] if args.quick else 1000)
    ceiling_uploads = args.ceiling_uploads or (QUICK["ceiling_uploads"] if args.quick else 1000)

    _say(f"1/5 local stack ceiling: {ceiling_uploads} uploads, no latency, no limits")
    ceiling = burst.run(
        burst.BurstConfig(
            uploads=ceiling_uploads,
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

    paced_config = burst.BurstConfig(
        uploads=uploads, scale=args.scale, median_latency=args.latency, overrides=tuple(args.param)
    )
    _say(f"2/5 burst: {paced_config}")
    paced = burst.run(paced_config)
    _say(json.dumps(burst.summary(paced)))
    burst.dump(paced, report.RAW / "burst.json")

    repetitions = QUICK["repetitions"] if args.quick else coldstart.REPETITIONS
    _say(f"3/5 cold starts ({repetitions} pairs each)")
    with LocalStack(StackOptions(log_level="ERROR")) as stack:
        cold = coldstart.measure(stack, repetitions)
    _say(coldstart.summary(cold))

    jobs = QUICK["jobs"] if args.quick else modes.JOBS
    _say(f"4/5 connected storage and temporary bucket ({jobs} uploads each): bytes and recorder time")
    connected = modes.run_mode("connected", jobs)
    temporary = modes.run_mode("temporary", jobs)
    _say("    processor memory against upload size")
    small, large = modes.memory_by_upload_size()

    _say("5/5 the model: calibration, the backfill; writing the report")
    text = report.render(
        report.Measures(
            ceiling=ceiling,
            paced=paced,
            cold=cold,
            connected=connected,
            temporary=temporary,
            memory_small=small,
            memory_large=large,
            wall_seconds=time.monotonic() - began,
            load=(load_before, os.getloadavg()[0]),
            quick=args.quick,
            cold_repetitions=repetitions,
        ),
        write=not args.no_write,
    )
    print(text)
    _say(f"done in {(time.monotonic() - began) / 60:.1f} minutes")
    return 0


def _compare(args: argparse.Namespace) -> int:
    if args.what == "limiter":
        runs = []
        for shared in (True, False):
            cfg = burst.BurstConfig(
                uploads=args.compare_uploads,
                scale=args.scale,
                median_latency=args.latency,
                shared_limiter=shared,
                overrides=tuple(args.param),
            )
            _say(f"burst, shared limiter {'on' if shared else 'off'}: {cfg}")
            runs.append(burst.run(cfg))
            _say(json.dumps(burst.summary(runs[-1])))
        lines = report.limiter_comparison(*runs)
    else:
        timing = _last_timing(report.RAW / "burst.json")
        lines = ["## Processor shapes in the model", "", *sizing.shapes(model.Design.from_template(), timing)]
    print("\n".join(lines))
    if not args.no_write:
        text = report.DOC.read_text() if report.DOC.exists() else "# Benchmarks\n"
        report.DOC.write_text(markdown.put_section(text, f"compare {args.what}", lines))
    return 0


def _last_timing(path: Path) -> model.Timing:
    """The timing calibrated on the last full run's burst, or none (Claid's time only) without one."""
    if not path.exists():
        _say(f"no {path}: the model runs with no time of the stack's own")
        return model.Timing()
    return model.calibrate(model.Measured.from_raw(json.loads(path.read_text())))


if __name__ == "__main__":
    raise SystemExit(main())
