"""backdrop_kit.bytecode refuses what it cannot do: no build, no runtime interpreter, a file that does not compile.
(What it makes of a real build is checked in tests/template, with the runtime's own Python.)"""

from __future__ import annotations

import sys

import pytest
from backdrop_kit.bytecode import BytecodeError, compile_build, main, runtime_python


@pytest.fixture
def build(tmp_path):
    folder = tmp_path / "build"
    (folder / "Function").mkdir(parents=True)
    (folder / "Function" / "handler.py").write_text("def handler(event, context):\n    return None\n")
    return folder


def test_a_missing_runtime_interpreter_stops_the_build_saying_how_to_provide_it(build, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main([str(build)]) == 1
    message = capsys.readouterr().err
    assert runtime_python() in message and "PYENV_VERSION" in message
    assert not list(build.rglob("*.pyc"))


def test_a_file_that_does_not_compile_fails_the_build_and_is_named(build, tmp_path, monkeypatch):
    # This test's Python stands in for the runtime's, under its name and alone on PATH.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / runtime_python()
    stand_in.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    compile_build(build)
    assert list(build.rglob("handler.*.pyc"))
    (build / "Function" / "broken.py").write_text("def handler(:\n")
    with pytest.raises(BytecodeError, match=r"broken\.py"):
        compile_build(build)


def test_no_build_is_refused(tmp_path):
    with pytest.raises(BytecodeError, match="run `sam build` first"):
        compile_build(tmp_path / "missing")
