"""`backdrop demo --review`: the review page on the demo's local stack, while the runner keeps playing Lambda
(so "try again" goes through the whole pipeline offline too)."""

from __future__ import annotations

import threading
import webbrowser
from collections.abc import Callable

from backdrop_kit.review.server import open_review
from backdrop_kit.runner import Runner
from backdrop_kit.stack import LocalStack


def review_while_running(
    stack: LocalStack,
    runner: Runner,
    *,
    open_browser: bool = True,
    progress: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> None:
    """Serve the review page for the local stack until Ctrl-C (or `stop` is set), draining the pipeline in the
    background. The local stack is found by name, exactly as a deployed one is."""
    stop = stop or threading.Event()
    server = open_review(stack.publish())
    url = server.url()
    print(f"backdrop review: {url}  (the local stack; Ctrl-C stops)", flush=True)
    if open_browser:
        webbrowser.open(url)

    def keep_draining() -> None:
        while not stop.is_set():
            runner.drain(timeout=600)
            stop.wait(0.5)

    def serve() -> None:
        server.serve_forever(poll_interval=0.2)

    threads = [threading.Thread(target=f, daemon=True, name=f.__name__) for f in (keep_draining, serve)]
    for thread in threads:
        thread.start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        progress("review stopped")
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
