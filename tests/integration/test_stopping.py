"""Long-running commands, started the way a background job, `nohup` or a CI runner starts them (SIGINT ignored),
stop cleanly on SIGINT and on SIGTERM and take their children with them; an idle local stack leaves the CPU alone."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import Pipeline

BACKDROP = Path(sys.executable).with_name("backdrop")  # the installed entry point, as a user runs it
SAMPLES = Path(__file__).resolve().parents[2] / "kit" / "backdrop_kit" / "samples"
PHOTO = str(SAMPLES / "espresso-cup.png")
# Deadlines only bound how long a broken command can hang the suite: every wait ends as soon as what it
# waits for is seen, so a quiet machine is no faster to pass than a busy one.
READY_DEADLINE = 180.0
STOP_DEADLINE = 60.0
TICKS = os.sysconf("SC_CLK_TCK")
# What a non-interactive shell does for `cmd &` (and what nohup-style launchers and CI runners do): the
# command starts with SIGINT ignored, which stops Python from ever raising KeyboardInterrupt on its own.
BACKGROUND_JOB = ["/bin/sh", "-c", 'trap "" INT; exec "$@"', "sh"]
STOPS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="process trees are read from /proc")


@dataclass(frozen=True)
class Proc:
    """A process as /proc knows it: the start time tells it apart from a later process given the same pid."""

    pid: int
    started: int

    @staticmethod
    def fields(pid: int) -> list[str] | None:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        return stat.rsplit(")", 1)[1].split()  # after "pid (comm)", which may itself hold spaces or ")"

    @classmethod
    def of(cls, pid: int) -> Proc:
        fields = cls.fields(pid)
        assert fields is not None, f"process {pid} is not running"
        return cls(pid, int(fields[19]))

    def alive(self) -> bool:
        fields = self.fields(self.pid)
        # A zombie has ended: it only waits for whoever inherited it to collect its exit status.
        return fields is not None and int(fields[19]) == self.started and fields[0] != "Z"

    def cpu_seconds(self) -> float:
        fields = self.fields(self.pid)
        assert fields is not None, f"process {self.pid} ended while it was measured"
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def descendants(root: int) -> set[Proc]:
    children: dict[int, list[Proc]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := Proc.fields(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(Proc(int(entry.name), int(fields[19])))
    found: set[Proc] = set()
    todo = list(children.get(root, []))
    while todo:
        proc = todo.pop()
        found.add(proc)
        todo.extend(children.get(proc.pid, []))
    return found


class Command:
    """`backdrop ...` started as sh starts a background job: SIGINT ignored, in a session of its own."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._stderr = log.open("w")
        # Through sh rather than preexec_fn, which is unsafe while this process runs threads (the in-process
        # local stack of the review test).
        self.proc = subprocess.Popen(
            [*BACKGROUND_JOB, str(BACKDROP), *args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: set[Proc] = set()
        threading.Thread(target=self._read, daemon=True).start()

    def descendants(self) -> set[Proc]:
        """Its process tree below it now (remembered, so that a failed test still cleans up after it)."""
        found = descendants(self.proc.pid)
        self.seen |= found
        return found

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, prefix: str) -> str:
        """The first stdout line starting with `prefix`, as soon as the command prints it."""
        deadline = time.monotonic() + READY_DEADLINE
        seen: list[str] = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                pytest.fail(f"ended ({self.proc.wait()}) before printing {prefix!r}: {seen}\n{self.errors()}")
            if line.startswith(prefix):
                return line
            seen.append(line)
        pytest.fail(f"no line starting with {prefix!r} within {READY_DEADLINE:.0f}s: {seen}\n{self.errors()}")

    def wait_for_error_line(self, text: str) -> None:
        """Until `text` appears on stderr (progress lines): polled, as the file is written by the command."""
        deadline = time.monotonic() + READY_DEADLINE
        while text not in self.errors():
            assert self.proc.poll() is None, f"ended ({self.proc.returncode}) before {text!r}:\n{self.errors()}"
            assert time.monotonic() < deadline, f"no {text!r} within {READY_DEADLINE:.0f}s:\n{self.errors()}"
            time.sleep(0.05)

    def errors(self) -> str:
        return self.log.read_text()

    def stop(self, signum: int) -> int:
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {STOP_DEADLINE:.0f}s after {signal.Signals(signum).name}:\n{self.errors()}")

    def close(self) -> None:
        # After a failed test: leave nothing running for the next one.
        if self.proc.poll() is None:
            self.descendants()
            self.proc.kill()
            self.proc.wait()
        for child in self.seen:
            if child.alive():
                os.kill(child.pid, signal.SIGKILL)
        self._stderr.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Command]]:
    commands: list[Command] = []

    def run(*args: str, env: dict[str, str] | None = None) -> Command:
        command = Command(list(args), tmp_path / f"stderr-{len(commands)}.log", env)
        commands.append(command)
        return command

    yield run
    for command in commands:
        command.close()


def assert_all_gone(procs: set[Proc]) -> None:
    """Each process has ended, or ends within the deadline (an orphan's death signal is asynchronous)."""
    deadline = time.monotonic() + STOP_DEADLINE
    while (alive := {p for p in procs if p.alive()}) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive, f"still running: {[Path(f'/proc/{p.pid}/cmdline').read_bytes() for p in alive]}"


def moto_servers(procs: set[Proc]) -> set[Proc]:
    return {p for p in procs if b"backdrop_kit.moto_server" in Path(f"/proc/{p.pid}/cmdline").read_bytes()}


def start_demo_review(start: Callable[..., Command], out: Path) -> tuple[Command, set[Proc]]:
    demo = start("demo", PHOTO, "--images", "1", "--review", "--no-browser", "--quiet", "--out", str(out))
    demo.wait_for("backdrop review: ")
    children = demo.descendants()
    assert moto_servers(children), f"demo --review should run a moto server: {children}"
    return demo, children


def test_a_background_start_ignores_sigint() -> None:
    # The premise of every test here: the way they start commands leaves SIGINT ignored, as `cmd &` does.
    probe = subprocess.run(
        [
            *BACKGROUND_JOB,
            sys.executable,
            "-c",
            "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "True"


@pytest.mark.parametrize("signum", STOPS)
def test_the_emulator_stops(start: Callable[..., Command], signum: int) -> None:
    emulator = start("emulator", "--port", "0")
    emulator.wait_for("Claid emulator on ")
    children = emulator.descendants()
    assert emulator.stop(signum) == 0, emulator.errors()
    assert "stopping" in emulator.errors()
    assert_all_gone(children)


@pytest.mark.parametrize("signum", STOPS)
def test_demo_review_stops_and_takes_its_moto_server(
    start: Callable[..., Command], tmp_path: Path, signum: int
) -> None:
    demo, children = start_demo_review(start, tmp_path)
    assert demo.stop(signum) == 0, demo.errors()
    assert "review stopped" in demo.errors()
    assert_all_gone(children)


def test_an_idle_demo_review_leaves_the_cpu_alone(start: Callable[..., Command], tmp_path: Path) -> None:
    demo, children = start_demo_review(start, tmp_path)
    tree = {Proc.of(demo.proc.pid), *children}
    window = 5.0
    before = sum(p.cpu_seconds() for p in tree)
    began = time.monotonic()
    time.sleep(window)  # the measurement window itself, not a wait for something to happen
    used = sum(p.cpu_seconds() for p in tree)
    elapsed = time.monotonic() - began
    # Work done, not speed: a busy machine slows the processes down but does not make them use more CPU.
    # Polling SQS every 50 ms while idle cost about 25% of a core; a quiet stack uses about 2%.
    assert used - before < 0.10 * elapsed, f"{used - before:.2f} CPU seconds in {elapsed:.1f}s while idle"
    assert demo.stop(signal.SIGINT) == 0, demo.errors()


def test_demo_stopped_while_draining_ends_interrupted_and_takes_its_moto_server(
    start: Callable[..., Command], tmp_path: Path
) -> None:
    # Claid calls of seconds: the demo is still draining when the signal arrives.
    demo = start("demo", PHOTO, "--images", "1", "--latency", "3", "--copies", "2", "--out", str(tmp_path))
    demo.wait_for_error_line("draining the pipeline")
    children = demo.descendants()
    assert moto_servers(children)
    assert demo.stop(signal.SIGTERM) == 128 + signal.SIGTERM, demo.errors()
    assert "stopped by SIGTERM" in demo.errors()
    assert_all_gone(children)


def test_review_of_a_stack_stops_on_sigterm(start: Callable[..., Command], pipeline: Pipeline) -> None:
    # The local stack found by name, as a deployed one is; the command's AWS endpoints are its moto servers.
    review = start("review", "--stack", pipeline.stack.publish(), "--no-browser", env=pipeline.stack.endpoints())
    review.wait_for("backdrop review: ")
    assert review.stop(signal.SIGTERM) == 0, review.errors()
    assert "review stopped" in review.errors()


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the moto server's death signal is Linux's prctl(PR_SET_PDEATHSIG)"
)
def test_its_children_die_with_a_killed_command(start: Callable[..., Command], tmp_path: Path) -> None:
    demo, children = start_demo_review(start, tmp_path)
    demo.proc.kill()  # SIGKILL: no handler, no finally; only the kernel can take the child along
    demo.proc.wait()
    assert_all_gone(children)
