"""The review page's HTTP server: 127.0.0.1 only, a random token per run traded once for a cookie, plain JSON errors.

Every request must name the server by its loopback address (Host 127.0.0.1:<port> or localhost:<port>: a page
on another site that rebinds its DNS name to 127.0.0.1 is refused). The address the CLI prints carries the run's
token once: `GET /?token=…` answers with a session cookie (HttpOnly, SameSite=Strict, Path=/, no expiry: it dies
with the browser session; not Secure, as this is plain http on loopback) and a redirect to the same address
without the token, so the token leaves the address bar and the tab's history, and is never in an image or API
URL, a Referer or this server's log (the printed address itself, in the terminal and perhaps in the browser's
record of the redirect, is good only while this run lasts). Every other request (the page, its script and style,
images, the API) authenticates by that cookie only. A token in any other URL is refused, not ignored: the page
never puts it there, so one that shows up is a link copied from somewhere it should not have been, and the
refusal says so. The cookie's value is a second random secret, not the token, and its name carries the port,
since cookies are not scoped by port and two review servers may run at once. Posts must also come from the page
itself (Origin and Sec-Fetch-Site, where the browser sends them): SameSite=Strict already keeps the cookie off
requests from other sites; this is the second lock.
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
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from backdrop_kit.deployment import find_deployment
from backdrop_kit.review.service import ReviewError, ReviewService, UploadFilter

TOKEN_PARAMETER = "token"
COOKIE_PREFIX = "backdrop_review_"
MAX_BODY = 64 * 1024
CHUNK = 64 * 1024
# The page runs only its own script and style files (no inline code, so an injected fragment cannot run), talks
# only to this server, and is never framed. form-action 'none': the page's one form (the filters) is sent by its
# script through fetch, never submitted.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# Everything else (JSON, images, the page's files) is data: if a browser were ever made to open one as a
# document, it may run nothing and load nothing.
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"
# The page's own files, served from the package by path, each with its type.
STATIC = {
    "/": ("page.html", "text/html; charset=utf-8"),
    "/page.js": ("page.js", "text/javascript; charset=utf-8"),
    "/page.css": ("page.css", "text/css; charset=utf-8"),
}
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
        self.token = secrets.token_urlsafe(32)  # in the printed address; good only for getting the cookie
        self.session = secrets.token_urlsafe(32)  # the cookie's value: what every later request shows
        package = files("backdrop_kit.review")
        self.static = {path: (package.joinpath(name).read_bytes(), kind) for path, (name, kind) in STATIC.items()}

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def allows_host(self, host: str | None) -> bool:
        return host in (f"127.0.0.1:{self.port}", f"localhost:{self.port}")

    def allows_token(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.token.encode())

    @property
    def cookie_name(self) -> str:
        return f"{COOKIE_PREFIX}{self.port}"

    def allows_cookie(self, cookie_headers: list[str]) -> bool:
        """Whether the request's Cookie header(s) hold this run's session. Parsed by hand, leniently: other
        servers on 127.0.0.1 (any port) may have set cookies of their own, in forms SimpleCookie gives up on."""
        for header in cookie_headers:
            for pair in header.split(";"):
                name, _, value = pair.strip().partition("=")
                if name == self.cookie_name and hmac.compare_digest(value.encode(), self.session.encode()):
                    return True
        return False

    def session_cookie(self) -> str:
        # No Expires or Max-Age: a session cookie, gone when the browser closes (and useless once this run ends).
        return f"{self.cookie_name}={self.session}; HttpOnly; SameSite=Strict; Path=/"

    def url(self, days: int | None = None) -> str:
        """The address to open: the only one that carries the token."""
        query = {TOKEN_PARAMETER: self.token, **({"days": str(days)} if days else {})}
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
            if not self.server.allows_host(self.headers.get("Host")):
                raise ReviewError(403, "this server answers only to 127.0.0.1 or localhost with its port")
            carried = [v for k, v in parse_qsl(url.query, keep_blank_values=True) if k == TOKEN_PARAMETER]
            if method == "GET" and url.path == "/" and carried:
                self._sign_in(carried, url.query)
                return
            self._guard(method, carried)
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

    def _sign_in(self, carried: list[str], query: str) -> None:
        """The printed address: trade the token for the session cookie, and send the browser on to the same
        address without it (303: the next request is a GET whatever this one was)."""
        if len(carried) != 1 or not self.server.allows_token(carried[0]):
            raise ReviewError(403, "wrong review token: open the address this run of `backdrop review` printed")
        rest = urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != TOKEN_PARAMETER])
        headers = {
            "Location": f"/?{rest}" if rest else "/",
            "Set-Cookie": self.server.session_cookie(),
            "Cache-Control": "no-store",
        }
        self._send(303, None, 0, headers)

    def _guard(self, method: str, carried: list[str]) -> None:
        if carried:
            raise ReviewError(
                403,
                "the review token belongs only in the address `backdrop review` printed, which trades it for a "
                "cookie; the page never puts it in a request: open that address instead",
            )
        if not self.server.allows_cookie(self.headers.get_all("Cookie") or []):
            raise ReviewError(
                403, "not signed in: open the address `backdrop review` printed (it signs this browser in once)"
            )
        if method != "GET":
            self._guard_origin()

    def _guard_origin(self) -> None:
        """A post comes from the page itself. Browsers say where a request comes from; a client that says
        nothing (a script, a test) has the cookie only if someone gave it the token."""
        origin = self.headers.get("Origin")
        site = self.headers.get("Sec-Fetch-Site")
        if (origin is not None and origin != f"http://{self.headers.get('Host')}") or site not in (None, "same-origin"):
            raise ReviewError(403, "only the review page itself can choose or try again")

    # --- answers ----------------------------------------------------------------------------------------
    def _send(self, status: int, content_type: str | None, length: int, headers: dict[str, str] | None = None) -> None:
        headers = {"Content-Security-Policy": DATA_POLICY, **(headers or {})}
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        if self.close_connection:
            # Say so: a client that does not know would send its next request on a socket about to close.
            self.send_header("Connection", "close")
        for name, value in headers.items():
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
        """The page (with its policy) and its script and style files."""
        body, content_type = self.server.static[urlsplit(self.path).path]
        # no-store: a page from an earlier run (another token, another port's cookie) is never shown from cache.
        headers = {"Cache-Control": "no-store"}
        if content_type.startswith("text/html"):
            headers["Content-Security-Policy"] = PAGE_POLICY
        self._send(200, content_type, len(body), headers)
        self.wfile.write(body)

    def uploads(self, query: Query) -> None:
        service = self.server.service
        rows = service.uploads(upload_filter(query))
        self._json(200, {"stack": self.server.stack_name, "actor": service.actor, "uploads": rows})

    def image(self, query: Query) -> None:
        image = self.server.service.image(_one(query, "key"))
        # Vary: Cookie keeps a cached image to this run's session: image URLs no longer differ by run (they carry
        # no token), and another run on the same port may serve another stack with the same keys.
        headers = {"Cache-Control": "private, max-age=300", "Vary": "Cookie"}
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
    **{("GET", path): ReviewHandler.page for path in STATIC},
    ("GET", "/api/uploads"): ReviewHandler.uploads,
    ("GET", "/api/image"): ReviewHandler.image,
    ("POST", "/api/select"): ReviewHandler.select,
    ("POST", "/api/retry"): ReviewHandler.retry,
}
