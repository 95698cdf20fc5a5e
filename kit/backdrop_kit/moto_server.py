"""moto in server mode, in its own process on 127.0.0.1: the local stand-in for S3, SQS, DynamoDB and friends.

moto's backends are not safe under concurrent requests (two TransactWriteItems with conditions can both
pass), while DynamoDB's conditional writes and transactions are atomic. The server here handles one request
at a time, so concurrency tests see AWS's guarantees rather than moto's races. The local stack runs two (see
DATA_SERVICES in stack.py), and each installs the kit's corrections to moto before its first request: S3's
behaviour (s3_fidelity), and costs that grew with moto's state (dynamodb_transactions, moto_costs).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from backdrop_kit import dynamodb_transactions, events_fidelity, moto_costs, s3_fidelity

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """Starts `moto.server` as a child process (so it uses the other core) and stops it with the stack; on Linux
    it also dies with the process that started it, however that ends. Linux ties this to the starting thread:
    start it from one that lives as long as the server should (the main thread, as the kit and tests do)."""

    def __init__(self, port: int | None = None, log_file: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_file = log_file
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> str:
        self.launch()
        return self.wait_until_listening(timeout)

    def launch(self) -> None:
        """Start the process without waiting for it to listen (so several servers can start side by side)."""
        env = {**os.environ, **LOCAL_CREDENTIALS}
        log = open(self._log_file, "ab") if self._log_file else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "backdrop_kit.moto_server", str(self.port), str(os.getpid())],
            stdout=log,
            stderr=log,
            env=env,
        )

    def wait_until_listening(self, timeout: float = 30.0) -> str:
        if self._proc is None:
            raise RuntimeError("moto server not launched")
        try:
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                if self._proc.poll() is not None:
                    raise RuntimeError(f"moto server exited with code {self._proc.returncode}")
                try:
                    httpx.get(f"{self.url}/moto-api/", timeout=1.0)
                    return self.url
                except httpx.TransportError:
                    time.sleep(0.05)  # waiting for a child process to listen, not for a test to pass
            raise RuntimeError(f"moto server did not listen on {self.url} within {timeout:.0f}s")
        except BaseException:
            self.stop()  # Ctrl-C or SIGTERM while it starts included: nobody else holds it yet
            raise

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None


def serve(port: int) -> None:
    """Run moto's WSGI app, one request at a time (connections stay concurrent, handling does not)."""
    import threading

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    s3_fidelity.install()  # S3 as S3 behaves where backdrop depends on it, before the first request
    dynamodb_transactions.install()  # a transaction's cost independent of the table's size
    moto_costs.install()  # a receive's cost independent of how many messages wait, an event's of its targets
    events_fidelity.install()  # an event's envelope with its account, as EventBridge delivers it
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialized(environ: dict[str, object], start_response: object) -> object:
        with lock:
            return list(app(environ, start_response))

    run_simple("127.0.0.1", port, serialized, threaded=True, request_handler=MotoRequestHandler)  # type: ignore[arg-type]


if __name__ == "__main__":
    if len(sys.argv) > 2:  # started by MotoServer: its parent alone decides when it stops
        from backdrop_kit.stopping import die_with_parent

        die_with_parent(int(sys.argv[2]))
        # A Ctrl-C in a terminal reaches the whole process group: the parent's shutdown still needs this server.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(int(sys.argv[1]))
