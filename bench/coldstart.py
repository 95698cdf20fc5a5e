"""Each function's cold start (its handler module's import, module-level clients included) against a bare
`import boto3`, timed inside fresh interpreters so nothing is already imported."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from backdrop_kit.stack import LocalStack

REPETITIONS = 7

BARE = "import time; t = time.perf_counter(); import boto3; print(time.perf_counter() - t)"
HANDLER = """
import importlib.util, sys, time
t = time.perf_counter()
spec = importlib.util.spec_from_file_location({name!r}, {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(time.perf_counter() - t)
"""


@dataclass(frozen=True)
class ColdStart:
    function_id: str
    seconds: float  # median import time of the handler module
    boto3_seconds: float  # median bare `import boto3`, measured interleaved with it
    heaviest: tuple[tuple[str, float], ...] = ()  # top-level packages by cumulative import seconds

    @property
    def ratio(self) -> float:
        return self.seconds / self.boto3_seconds


def _time(code: str, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return float(out.strip().splitlines()[-1])


def measure(stack: LocalStack, repetitions: int = REPETITIONS) -> list[ColdStart]:
    results = []
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    for function_id, spec in stack.template.functions(stack.parameters).items():
        env = {**base, **stack.function_environment(function_id)}
        code = HANDLER.format(name=spec.module_file.stem, path=str(Path(spec.module_file)))
        handler_times, bare_times = [], []
        _time(code, env)  # the first run may write bytecode caches; Lambda ships them
        for _ in range(repetitions):
            bare_times.append(_time(BARE, env))
            handler_times.append(_time(code, env))
        results.append(
            ColdStart(
                function_id,
                statistics.median(handler_times),
                statistics.median(bare_times),
                heaviest_imports(code, env),
            )
        )
    return results


def heaviest_imports(code: str, env: dict[str, str], top: int = 6) -> tuple[tuple[str, float], ...]:
    """`python -X importtime`: the packages the handler pulls in first-hand, heaviest first (cumulative)."""
    totals = _import_times(code, env)
    for startup in _import_times("pass", env):  # imported before the handler's code runs
        totals.pop(startup, None)
    return tuple(sorted(totals.items(), key=lambda kv: kv[1], reverse=True)[:top])


def _import_times(code: str, env: dict[str, str]) -> dict[str, float]:
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True, check=True
    ).stderr
    totals: dict[str, float] = {}
    for line in err.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|", 2)
        if not cumulative.strip().isdigit() or name.startswith("   "):
            continue  # the header, or a nested import (counted in its parent's cumulative time)
        package = name.strip().split(".")[0]
        totals[package] = totals.get(package, 0.0) + int(cumulative) / 1e6
    return totals


def summary(results: list[ColdStart]) -> str:
    return json.dumps({r.function_id: {"seconds": r.seconds, "boto3": r.boto3_seconds} for r in results})
