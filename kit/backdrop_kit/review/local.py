"""`backdrop demo --review`: the review page on the demo's local stack, while the runner keeps playing Lambda
(so "try again" goes through the whole pipeline offline too)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from backdrop_kit.review.server import open_review, serve_until_interrupted
from backdrop_kit.runner import Runner
from backdrop_kit.stack import LocalStack


def review_while_running(
    stack: LocalStack, runner: Runner, *, open_browser: bool = True, progress: Callable[[str], None] = print
) -> None:
    """Serve the review page for the local stack until Ctrl-C, draining the pipeline in the background. The
    local stack is found by name, exactly as a deployed one is."""
    server = open_review(stack.publish())
    stop = threading.Event()
    draining = threading.Thread(target=runner.drain_until, args=(stop,), daemon=True, name="keep_draining")
    draining.start()
    try:
        serve_until_interrupted(
            server, url=server.url(), about="the local stack", open_browser=open_browser, progress=progress
        )
    finally:
        stop.set()
        # Before the stack stops under it; bounded, as a drain ends its invocations within their timeouts.
        draining.join()
