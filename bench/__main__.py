"""`make bench`: measures, in one run on the local stack, what the design promises, and writes docs/benchmarks.md
(with docs/benchmarks-in-flight.png). Measures:

1. the local stack's own ceiling (no latency, no limits), so the burst below can be read against it;
2. a 1,000-upload burst with Claid's latency and rate limits (bench/burst.py), against the bounds of
   bench/bounds.py, and the sizing model (bench/model.py) calibrated on it and shown beside it;
3. each function's cold start against its floor (bench/coldstart.py);
4. image bytes through each function and the recorder's time, connected storage and temporary bucket, and the
   processor's memory against upload size (bench/modes.py);
5. a cost model per 1,000 images (bench/cost.py), and a 100,000-photo backfill from the model (bench/sizing.py).

Time budget (a quiet 2-core machine). The burst is bound by Claid's limits (499 s for 1,000 uploads) and mostly
waits: it keeps about a third of the 2 cores busy. The measures that count work rather than time it (the ceiling's
rates are a lower bound either way) run beside it, in a child process at a lower priority (nice 10), so they take
what the burst leaves and never the time it needs; the cold starts, which time CPU work, and the model run after it:

| step | full | --quick |
|---|---|---|
| burst: 1,000 uploads at k = 1 (bound 499 s; 120 quick, bound 39 s), in this process | ~8.7 min | ~1.0 min |
| beside it: the ceiling, 1,000 uploads (200 quick), no latency, no limits | ~2 min | ~0.5 min |
| beside it: bytes and memory (modes), two small stacks of 6 uploads (2 quick) | ~0.5 min | ~0.2 min |
| after it: cold starts, 4 functions x 7 pairs (3 quick) of fresh interpreters | ~0.6 min | ~0.3 min |
| after it: the model's calibration and the 100,000-photo backfill | ~0.2 min | ~0.2 min |
| total | ~9.5 min | ~1.7 min |

So the ceiling is the stack's ceiling while the burst also runs on the machine: a lower bound of its own, which is
what the burst's headroom needs. `--one-at-a-time` runs every step alone (about 11 minutes).

Opt-in comparisons, each keeping its last result in docs/benchmarks.md:
- `python -m bench compare limiter`: the burst with the shared limiter on and off (200 uploads each, ~4 min);
- `python -m bench compare shapes`: the processor's shapes in the model, on the same drawn latencies (seconds).
A shape is measured on the real stack with `--param`, e.g. `python -m bench --param ProcessorBatchSize=1`.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

from backdrop_kit.stack import LocalStack, StackOptions
from backdrop_kit.stopping import Stopped, stopping_on_signals

from bench import burst, coldstart, markdown, model, modes, report, side, sizing

QUICK = {"uploads": 120, "ceiling_uploads": 200, "repetitions": 3, "jobs": 2}


_BEGAN = time.monotonic()


def _say(text: str) -> None:
    elapsed = time.monotonic() - _BEGAN
    print(f"[bench {int(elapsed // 60)}:{int(elapsed % 60):02d}] {text}", file=sys.stderr, flush=True)


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
    parser.add_argument(
        "--one-at-a-time", action="store_true", help="run each measure alone instead of beside the burst (slower)"
    )
    sub = parser.add_subparsers(dest="command")
    limiter = sub.add_parser("compare", help="an opt-in comparison: limiter (on the stack) or shapes (the model)")
    limiter.add_argument("what", choices=("limiter", "shapes"))
    limiter.add_argument("--compare-uploads", type=int, default=200, help="uploads per burst (limiter)")
    beside = sub.add_parser("side", help="(internal) the measures that run beside the burst; results to --out")
    beside.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "compare":
        return _compare(args)
    if args.command == "side":
        os.nice(10)  # the burst beside it is the measure that must not wait
        try:
            with stopping_on_signals():  # the bench stopping it: its local stacks still stop their moto servers
                measured = _side(args, label=" beside")
        except Stopped as stopped:
            return stopped.exit_code
        args.out.write_bytes(pickle.dumps(measured))
        return 0
    return _full(args)


def _side(args: argparse.Namespace, label: str = "") -> side.Side:
    return side.measure(
        ceiling_uploads=args.ceiling_uploads or (QUICK["ceiling_uploads"] if args.quick else 1000),
        jobs=QUICK["jobs"] if args.quick else modes.JOBS,
        say=_say,
        label=label,
    )


def _full(args: argparse.Namespace) -> int:
    began = time.monotonic()
    load_before = os.getloadavg()[0]
    uploads = args.uploads or (QUICK["uploads"] if args.quick else 1000)
    paced_config = burst.BurstConfig(
        uploads=uploads, scale=args.scale, median_latency=args.latency, overrides=tuple(args.param)
    )
    side_out = report.RAW / "side.pickle"
    child = None
    if args.one_at_a_time:
        measured = _side(args)
    else:
        side_out.parent.mkdir(parents=True, exist_ok=True)
        side_out.unlink(missing_ok=True)
        child = subprocess.Popen(
            [sys.executable, "-m", "bench", *_side_arguments(args), "side", "--out", str(side_out)]
        )
    _say(f"burst: {paced_config}" + ("" if child is None else "; the other measures beside it, at a lower priority"))
    try:
        paced = burst.run(paced_config)
    except BaseException:
        if child is not None:
            child.terminate()
            child.wait()
        raise
    _say(f"burst: {json.dumps(burst.summary(paced))}")
    burst.dump(paced, report.RAW / "burst.json")
    if child is not None:
        if child.wait() != 0:
            _say(f"the measures beside the burst failed (exit {child.returncode}); see above")
            return 1
        measured = pickle.loads(side_out.read_bytes())

    # Cold starts time CPU work in fresh interpreters: they run alone, after the burst, on a quiet machine.
    repetitions = QUICK["repetitions"] if args.quick else coldstart.REPETITIONS
    _say(f"cold starts ({repetitions} pairs each)")
    with LocalStack(StackOptions(log_level="ERROR")) as stack:
        cold = coldstart.measure(stack, repetitions)
    _say(f"cold starts: {coldstart.summary(cold)}")

    _say("the model: calibration, the backfill; writing the report")
    text = report.render(
        report.Measures(
            ceiling=measured.ceiling,
            paced=paced,
            cold=cold,
            connected=measured.connected,
            temporary=measured.temporary,
            memory_small=measured.memory[0],
            memory_large=measured.memory[1],
            wall_seconds=time.monotonic() - began,
            load=(load_before, os.getloadavg()[0]),
            quick=args.quick,
            cold_repetitions=repetitions,
            beside=child is not None,
        ),
        write=not args.no_write,
    )
    print(text)
    _say(f"done in {(time.monotonic() - began) / 60:.1f} minutes")
    return 0


def _side_arguments(args: argparse.Namespace) -> list[str]:
    """The options the child needs to measure what this run would have measured alone."""
    given = ["--quick"] if args.quick else []
    if args.ceiling_uploads:
        given += ["--ceiling-uploads", str(args.ceiling_uploads)]
    return given


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
