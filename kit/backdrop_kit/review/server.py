"""The review page's HTTP server: 127.0.0.1 only, a random token per run, plain JSON errors.

Every request must name the server by its loopback address (Host 127.0.0.1:<port> or localhost:<port>: a page
on another site that rebinds its DNS name to 127.0.0.1 is refused) and carry the run's token: in the
`X-Review-Token` header, or for the page itself and its images (which a browser fetches without our headers)
in the `token` query parameter. Posts take the header only, so a form on another site cannot send one.
"""

from __future__ import annotations

import hmac
import json
import secrets
import sys
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from backdrop_kit.deployment import find_deployment
from backdrop_kit.review.service import ReviewError, ReviewService, UploadFilter

TOKEN_HEADER = "X-Review-Token"
MAX_BODY = 64 * 1024
CHUNK = 64 * 1024
_PAGE_POLICY = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_UNEXPECTED = "the review server hit an unexpected problem: the terminal running `backdrop review` has the details"

Query = dict[str, list[str]]


def _log(message: str) -> None:
    print(f"[backdrop review] {message}", file=sys.stderr, flush=True)


def _one(query: Query, name: str, default: str = "") -> str:
    return query.get(name, [default])[0]


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ReviewError(400, f"{name} must be a whole number, not {text!r}") from None


def upload_filter(query: Query) -> UploadFilter:
    """`?days=7&profile=shoes&status=succeeded&awaiting=0` -> the filter (awaiting review only by default)."""
    return UploadFilter(
        days=_int(_one(query, "days", "7"), "days"),
        profile=_one(query, "profile").strip() or None,
        status=_one(query, "status").strip() or None,
        awaiting=_one(query, "awaiting", "1") not in ("0", "false", ""),
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _job_id(body: dict[str, Any]) -> str:
    job_id = body.get("job_id")
    if not isinstance(job_id, str) or not 0 < len(job_id) <= 64:
        raise ReviewError(400, "job_id must be the job's id (a string)")
    return job_id


def choice(body: dict[str, Any]) -> tuple[str, list[int], int | None]:
    """The body of POST /api/select: job id, variant numbers (first the main image), the version the page saw."""
    variants = body.get("variants")
    if not isinstance(variants, list) or not variants or not all(_is_int(v) for v in variants):
        raise ReviewError(400, "choose at least one variant (variants: a list of variant numbers)")
    expected = body.get("expected_version")
    if expected is not None and not (_is_int(expected) and expected >= 0):
        raise ReviewError(400, "expected_version must be the selection version the page showed (0 for none)")
    return _job_id(body), variants, expected


class ReviewServer(ThreadingHTTPServer):
    """`open_review(...)` makes one; `serve_forever()` serves it until `shutdown()` (or Ctrl-C in the CLI)."""

    daemon_threads = True

    def __init__(self, service: ReviewService, stack_name: str, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), ReviewHandler)
        self.service = service
        self.stack_name = stack_name
        self.token = secrets.token_urlsafe(32)
        self.page = files("backdrop_kit.review").joinpath("page.html").read_bytes()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def allows_host(self, host: str | None) -> bool:
        return host in (f"127.0.0.1:{self.port}", f"localhost:{self.port}")

    def allows_token(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.token.encode())

    def url(self, days: int | None = None) -> str:
        query = {"token": self.token, **({"days": str(days)} if days else {})}
        return f"http://127.0.0.1:{self.port}/?{urlencode(query)}"


def open_review(stack_name: str, *, port: int = 0, session: Any = None) -> ReviewServer:
    """The review server for a deployed stack, found by name with the caller's own credentials (not started:
    call `serve_forever`). Raises DeploymentNotFound for an unknown stack."""
    session = session or boto3.Session()
    deployment = find_deployment(session.client("cloudformation"), stack_name)
    return ReviewServer(ReviewService.for_deployment(deployment, session), stack_name, port)


def serve_until_interrupted(
    server: ReviewServer, *, url: str, about: str, open_browser: bool, progress: Callable[[str], None]
) -> None:
    """Say where the page is, open it unless told not to, and serve until Ctrl-C (or SIGTERM, with the CLI's
    handlers: see backdrop_kit.stopping)."""
    import webbrowser

    try:
        # Inside the try: a stop that arrives as soon as the address is out (a script waiting for this line)
        # is the ordinary stop, not an interruption.
        print(f"backdrop review: {url}  ({about}; Ctrl-C stops)", flush=True)
        if open_browser:
            webbrowser.open(url)
        server.serve_forever()
    except KeyboardInterrupt:
        progress("review stopped")
    finally:
        server.server_close()


class ReviewHandler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "backdrop-review"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    # --- dispatch and guards --------------------------------------------------------------------------
    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        try:
            self._guard(method, query)
            route = ROUTES.get((method, url.path))
            if route is None:
                raise ReviewError(404, "no such page")
            route(self, query)
        except ReviewError as exc:
            self.close_connection = True  # a refused post's body may be unread: start the next request afresh
            self._json(exc.status, {"error": exc.message, **exc.details})
        except ClientError as exc:
            error = exc.response.get("Error", {})
            self.close_connection = True
            _log(f"{method} {url.path}: {exc}")
            self._json(502, {"error": f"AWS refused {exc.operation_name}: {error.get('Code')} {error.get('Message')}"})
        except BotoCoreError as exc:
            self.close_connection = True
            _log(f"{method} {url.path}: {exc}")
            self._json(502, {"error": f"AWS could not be reached: {exc}"})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away mid-answer (a closed tab, a replaced image)
        except Exception:
            self.close_connection = True
            _log(f"{method} {url.path} failed:\n{traceback.format_exc()}")
            self._json(500, {"error": _UNEXPECTED})

    def _guard(self, method: str, query: Query) -> None:
        if not self.server.allows_host(self.headers.get("Host")):
            raise ReviewError(403, "this server answers only to 127.0.0.1 or localhost with its port")
        token = self.headers.get(TOKEN_HEADER)
        if token is None and method == "GET":
            token = _one(query, "token") or None
        if not self.server.allows_token(token):
            raise ReviewError(403, "missing or wrong review token: open the address `backdrop review` printed")

    # --- answers ----------------------------------------------------------------------------------------
    def _send(self, status: int, content_type: str, length: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        if self.close_connection:
            # Say so: a client that does not know would send its next request on a socket about to close.
            self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self._send(status, "application/json", len(body), {"Cache-Control": "no-store"})
        self.wfile.write(body)

    def _body(self) -> dict[str, Any]:
        length = _int(self.headers.get("Content-Length", "0"), "Content-Length")
        if not 0 < length <= MAX_BODY:
            raise ReviewError(400, "send a JSON object (at most 64 KiB)")
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError:
            raise ReviewError(400, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise ReviewError(400, "send a JSON object")
        return body

    # --- routes -----------------------------------------------------------------------------------------
    def page(self, _: Query) -> None:
        headers = {"Content-Security-Policy": _PAGE_POLICY, "Cache-Control": "no-store"}
        self._send(200, "text/html; charset=utf-8", len(self.server.page), headers)
        self.wfile.write(self.server.page)

    def uploads(self, query: Query) -> None:
        service = self.server.service
        rows = service.uploads(upload_filter(query))
        self._json(200, {"stack": self.server.stack_name, "actor": service.actor, "uploads": rows})

    def image(self, query: Query) -> None:
        image = self.server.service.image(_one(query, "key"))
        headers = {"Cache-Control": "private, max-age=300", "Content-Security-Policy": "default-src 'none'; sandbox"}
        self._send(200, image.content_type, image.length, headers)
        try:
            for chunk in image.body.iter_chunks(CHUNK):
                self.wfile.write(chunk)
        except (OSError, BotoCoreError) as exc:  # headers are out: no JSON error can follow, only a cut answer
            self.close_connection = True
            if not isinstance(exc, BrokenPipeError | ConnectionResetError):
                _log(f"image {image.key}: {exc}")
        finally:
            image.body.close()

    def select(self, _: Query) -> None:
        job_id, variants, expected = choice(self._body())
        self._json(200, self.server.service.select(job_id, variants, expected))

    def retry(self, _: Query) -> None:
        self._json(202, self.server.service.retry(_job_id(self._body())))

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if isinstance(code, int) and code >= 400:
            _log(f"{self.command} {urlsplit(self.path).path} -> {code}")

    def log_message(self, format: str, *args: Any) -> None:
        _log((format % args).replace(self.server.token, "<token>"))


ROUTES: dict[tuple[str, str], Callable[[ReviewHandler, Query], None]] = {
    ("GET", "/"): ReviewHandler.page,
    ("GET", "/api/uploads"): ReviewHandler.uploads,
    ("GET", "/api/image"): ReviewHandler.image,
    ("POST", "/api/select"): ReviewHandler.select,
    ("POST", "/api/retry"): ReviewHandler.retry,
}
