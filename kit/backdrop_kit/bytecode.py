"""Bytecode in what `sam build` made, so that a deployed cold start loads modules instead of compiling them.

`sam build` unpacks the dependencies' wheels without compiling them and copies our own code as .py files, and
Lambda's code directories are read-only: every cold start would compile every module it imports and could not
keep the result. This compiles everything under the build directory with the runtime's own interpreter (bytecode
is per Python version, found by the interpreter's cache tag) into unchecked-hash .pyc files (PEP 552), which are
loaded without looking at the source's modification time: a zip does not keep it exactly.

    python -m backdrop_kit.bytecode [BUILD_DIR]    # default .aws-sam/build; `make build` runs it after sam build
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from backdrop_kit.template import load_template

DEFAULT_BUILD_DIR = Path(".aws-sam/build")


class BytecodeError(RuntimeError):
    """The build could not be compiled: no build, no runtime interpreter, or a file that does not compile."""


def runtime_python() -> str:
    """The interpreter of the functions' runtime, e.g. python3.13: template.yaml's Runtime parameter default."""
    return str(load_template().parameters()["Runtime"]["Default"])


def _runs(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", ""], capture_output=True).returncode == 0
    except OSError:
        return False


def compile_build(build_dir: Path) -> None:
    """Compiles every .py file under build_dir with the runtime's interpreter, or raises BytecodeError."""
    if not build_dir.is_dir():
        raise BytecodeError(f"{build_dir} does not exist: run `sam build` first")
    python = runtime_python()
    if not _runs(python):
        version = python.removeprefix("python")
        raise BytecodeError(
            f"{python} (template.yaml's Runtime) does not run from PATH, and the bytecode must be compiled by the "
            f"runtime's own Python (sam build needs it too). Install it and put it on PATH; with pyenv, add it "
            f"beside your default version: PYENV_VERSION=<default>:<{version}.x>, e.g. PYENV_VERSION=3.11.7:3.13.0"
        )
    command = [python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(build_dir)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:  # compileall fails when any file does not compile, and names it
        raise BytecodeError(f"{python} could not compile {build_dir}:\n{result.stdout}{result.stderr}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    build_dir = Path(args[0]) if args else DEFAULT_BUILD_DIR
    try:
        compile_build(build_dir)
    except BytecodeError as error:
        print(f"backdrop_kit.bytecode: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
