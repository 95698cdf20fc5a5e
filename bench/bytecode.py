"""What the build's bytecode saves a cold start (docs/decisions.md 47): the processor's handler module imported from
what `make build` made, in fresh interpreters of the runtime's Python, with the build's .pyc files and without them
(a copy without __pycache__), interleaved, median of each.

    make build && python -m bench.bytecode [--repetitions N] [BUILD_DIR]

As on Lambda: the function's code comes first on sys.path and the layer's python/ after it, nothing is written
beside them (PYTHONDONTWRITEBYTECODE, so the copy without bytecode stays without), and the environment is the
template's for the function (parameter defaults; a resource's logical id for its name). Two things differ from
Lambda, the same way on both sides: boto3, which Lambda's runtime brings, is installed here by pip for the
runtime's Python (compiled, as pip does), and when this machine is not arm64 the layer's pydantic-core extension
(built for arm64) gets the same version's extension for this machine beside it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from backdrop_kit.bytecode import DEFAULT_BUILD_DIR, runtime_python
from backdrop_kit.template import load_template

from bench.coldstart import HANDLER

FUNCTION = "ProcessorFunction"
LAYER = Path("BackdropLayer/python")


def function_environment(function_id: str) -> dict[str, str]:
    template = load_template()
    spec = template.functions()[function_id]
    values = template.resolve(
        spec.environment,
        parameters=template.parameter_defaults(),
        physical={resource: resource for resource in template.raw["Resources"]},
        attributes={},
    )
    return {name: str(value) for name, value in values.items()}


def _pip(python: str, *args: str) -> None:
    subprocess.run([python, "-m", "pip", "-q", "--disable-pip-version-check", *args], check=True)


def stage(build_dir: Path, work: Path, python: str) -> tuple[Path, Path, Path]:
    """Two copies of the build, with and without bytecode, and a folder standing in for the runtime's boto3."""
    with_bytecode, without = work / "with", work / "without"
    shutil.copytree(build_dir, with_bytecode)
    shutil.copytree(build_dir, without, ignore=shutil.ignore_patterns("__pycache__"))
    runtime = work / "runtime"
    _pip(python, "install", "--target", str(runtime), "boto3")
    if platform.machine() not in ("aarch64", "arm64"):
        [dist] = (build_dir / LAYER).glob("pydantic_core-*.dist-info")
        version = dist.name.removeprefix("pydantic_core-").removesuffix(".dist-info")
        wheels = work / "wheels"
        _pip(python, "download", "--no-deps", "--only-binary", ":all:", "-d", str(wheels), f"pydantic-core=={version}")
        [wheel] = wheels.glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            [name] = [n for n in archive.namelist() if n.endswith(".so")]
            extension = archive.read(name)
        for copy in (with_bytecode, without):
            (copy / LAYER / name).write_bytes(extension)
    return with_bytecode, without, runtime


def import_seconds(python: str, build: Path, runtime: Path, env: dict[str, str]) -> float:
    """One fresh interpreter's time to import the handler module (the interpreter's own start-up excluded)."""
    paths = [str(build / FUNCTION), str(build / LAYER), str(runtime)]
    code = f"import sys; sys.path[:0] = {paths!r}\n" + HANDLER.format(
        name="handler", path=str(build / FUNCTION / "handler.py")
    )
    result = subprocess.run([python, "-s", "-c", code], env=env, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"the handler did not import from {build}:\n{result.stderr}")
    return float(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bytecode", description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", nargs="?", type=Path, default=DEFAULT_BUILD_DIR)
    parser.add_argument("--repetitions", type=int, default=9)
    args = parser.parse_args(argv)
    python = runtime_python()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))}
    env = {
        **base,
        **function_environment(FUNCTION),
        "AWS_REGION": "us-east-1",  # Lambda sets both
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    with tempfile.TemporaryDirectory(prefix="bench-bytecode-") as work:
        with_bytecode, without, runtime = stage(args.build_dir, Path(work), python)
        timed: dict[Path, list[float]] = {with_bytecode: [], without: []}
        for _ in range(args.repetitions):
            for build in (without, with_bytecode):
                timed[build].append(import_seconds(python, build, runtime, env))
        if any(without.rglob("__pycache__")):
            raise RuntimeError("bytecode was written into the copy without it: the comparison is void")
    source, compiled = statistics.median(timed[without]), statistics.median(timed[with_bytecode])
    print(f"{python}, {FUNCTION} handler import, median of {args.repetitions} interleaved pairs:")
    print(f"  from source: {source:.3f} s   with bytecode: {compiled:.3f} s   ratio: {source / compiled:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
