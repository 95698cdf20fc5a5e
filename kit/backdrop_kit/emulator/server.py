"""The Claid emulator's HTTP server: auth and scopes, rate limits, credits, injected faults, scene/create, image
edit and storage. The two billed endpoints share one path through the server, so they share the account's rate
limit, the latency model, the faults and the bill."""

from __future__ import annotations

import hashlib
import json
import math
import posixpath
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from backdrop_kit.emulator import edits, images, variants
from backdrop_kit.emulator.edit_schema import Refused, parse_edit
from backdrop_kit.emulator.latency import LatencyModel
from backdrop_kit.emulator.schema import Invalid, destination_parts, parse, unpaired_surrogates
from backdrop_kit.emulator.storage import Connector, Connectors, TemporaryBucket

SCENE_PATHS = ("/v1-ea/scene/create", "/v1/scene/create")
# The OpenAPI's path, and the one the prose pages still show.
EDIT_PATHS = ("/v1/image/edit", "/v1-beta1/image/edit")
CREDITS_PER_IMAGE = 2.0
AUTOPROMPT_CREDITS = 0.5
# Scopes a key may be limited to (an unscoped key works everywhere).
SCOPES = {"scene": "image_generation", "edit": "image_editing", "storage": "storage"}
# (error_code, error_type) of each error the emulator answers, in Claid's one flat error body. Documented by
# Claid: 111/auth, 9000/validation, 2001/general (429). The rest are undocumented codes, so the emulator uses
# the HTTP status as the code, with a type from the OpenAPI's list.
AUTH = ("111", "auth")
FORBIDDEN = ("403", "auth")
VALIDATION = ("9000", "validation")
RATE_LIMITED = ("2001", "general")
NO_CREDITS = ("402", "billing")
NOT_RETRIEVABLE = ("400", "image")
BAD_SIZE = ("400", "image")  # past the schema: a side Claid's server does not take, an output too large
NO_STORAGE = ("400", "storage")
STORAGE_CONFLICT = ("409", "storage")
NOT_FOUND = ("404", "web")
GONE = ("410", "web")
SERVER_ERROR = ("500", "runtime_settings")  # undocumented: the status as the code, like the others


@dataclass
class EmulatorConfig:
    api_keys: frozenset[str] = frozenset({"local-test-key"})
    # A key limited to scopes (image_generation, image_editing, storage); keys not named here are unscoped.
    key_scopes: dict[str, frozenset[str]] = field(default_factory=dict)
    credits: float | None = None
    # Claid publishes no price for image edits; these are the stack's defaults (RenditionEditCredits and
    # RenditionUpscaleCredits), so that a local bill and the ledger can be compared.
    edit_credits: float = 1.0
    upscale_credits: float = 2.0
    rate_per_second: int = 4
    rate_per_minute: int = 120
    fault_rate: float = 0.0
    # "drop": the connection closes before anything is generated or charged. "lost": Claid generated, stored
    # and charged, then the answer never arrived (the worst case). "slow": slow_seconds more on top of latency.
    fault_kinds: tuple[str, ...] = ("500", "429", "slow", "drop")
    seed: int = 0
    slow_seconds: float = 2.0
    # Median seconds of a one-image call (0 = instant); see latency.py for the distribution and its factors.
    latency: float = 0.0
    latency_sigma: float = 0.25
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    tmp_url_ttl_seconds: float = 86400.0
    host: str = "127.0.0.1"
    port: int = 0


@dataclass
class CallRecord:
    request_id: str
    path: str
    status: int
    kind: str = "scene"  # scene | edit
    fault: str | None = None
    image_url: str | None = None
    destination: str | None = None
    number_of_images: int = 0
    images_returned: int = 0
    credits_charged: float = 0.0
    body: dict[str, Any] | None = None
    started: float = 0.0  # time.monotonic() when the request arrived
    finished: float = 0.0  # ... and when it was answered (or dropped)
    latency: float = 0.0  # the generation time drawn for this call
    answered: bool = True  # False: the client got no answer (dropped, lost, or it had hung up)
    input_sha256: str | None = None  # of the bytes Claid read: which version of the photo it generated from
    upscaled: bool = False  # an edit with restorations.upscale (priced as such)
    output_key: str | None = None  # where an edit's image was written (connected storage)
    output_size: tuple[int, int] | None = None  # an edit's output, in pixels


class _Reply(Exception):
    """Ends request handling with this status and error body."""

    def __init__(
        self,
        status: int,
        code: str,
        kind: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error_code": code, "error_type": kind, "error_message": message, "error_details": details or {}}
        self.headers = headers or {}


class _Drop(Exception):
    pass


class ClaidEmulator:
    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.calls: list[CallRecord] = []
        self.connectors = Connectors(lambda: self.config.s3_endpoint_url, self.config.s3_region)
        self.tmp = TemporaryBucket(lambda: self.config.tmp_url_ttl_seconds)
        self._lock = threading.Lock()
        self._generating = 0  # scene requests being handled right now
        self._idle = threading.Condition(self._lock)
        self._rng = random.Random(self.config.seed)
        self.latency = LatencyModel(self.config.latency, self.config.latency_sigma, seed=self.config.seed)
        self._windows: dict[str, deque[float]] = {}
        self._spent = 0.0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self.log: Any = None  # a callable(str) for one line per request, set by the CLI

    # --- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> str:
        emulator = self

        class Handler(_Handler):
            owner = emulator

        self._server = ThreadingHTTPServer((self.config.host, self.config.port), Handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        self.base_url = f"http://{self.config.host}:{port}"
        # shutdown() waits for the loop's next look at its flag: every 50 ms rather than the default half second,
        # which every stop (each local stack's, each test's) paid in full.
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), name="claid-emulator", daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ClaidEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- knobs ------------------------------------------------------------------------------------------
    def add_storage(
        self, name: str, bucket: str, path: str = "", access_key: str = "test", secret_access_key: str = "test"
    ) -> None:
        self.connectors.add(name, bucket, path, access_key, secret_access_key)

    def set_faults(
        self, fault_rate: float, fault_kinds: tuple[str, ...] | None = None, seed: int | None = None
    ) -> None:
        with self._lock:
            self.config.fault_rate = fault_rate
            if fault_kinds is not None:
                self.config.fault_kinds = fault_kinds
            if seed is not None:
                self._rng = random.Random(seed)

    def wait_until_idle(self, timeout: float) -> bool:
        """Block until no scene request is being handled (a client that hung up does not stop Claid)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._generating == 0, timeout)

    def _enter(self) -> None:
        with self._idle:
            self._generating += 1

    def _leave(self) -> None:
        with self._idle:
            self._generating -= 1
            self._idle.notify_all()

    def set_latency(self, median: float, sigma: float | None = None) -> None:
        self.config.latency = median
        if sigma is not None:
            self.config.latency_sigma = sigma
        self.latency = LatencyModel(median, self.config.latency_sigma, seed=self.config.seed)

    def set_credits(self, credits: float | None) -> None:
        with self._lock:
            self.config.credits = credits
            self._spent = 0.0

    def credits_left(self) -> float | None:
        return None if self.config.credits is None else self.config.credits - self._spent

    def stats(self) -> dict[str, Any]:
        with self._lock:
            calls = list(self.calls)
        by_status: dict[str, int] = {}
        for call in calls:
            by_status[str(call.status)] = by_status.get(str(call.status), 0) + 1
        return {
            "requests": len(calls),
            "succeeded": by_status.get("200", 0),
            "by_status": by_status,
            "images": sum(c.images_returned for c in calls if c.kind == "scene"),
            "edits": sum(c.images_returned for c in calls if c.kind == "edit"),
            "edit_credits": sum(c.credits_charged for c in calls if c.kind == "edit"),
            "credits_charged": sum(c.credits_charged for c in calls),
            "charged_without_answer": sum(c.credits_charged for c in calls if not c.answered),
            "credits_left": self.credits_left(),
        }

    # --- rules ------------------------------------------------------------------------------------------
    def draw_fault(self) -> str | None:
        with self._lock:
            if self.config.fault_rate <= 0 or not self.config.fault_kinds:
                return None
            if self._rng.random() >= self.config.fault_rate:
                return None
            return self._rng.choice(self.config.fault_kinds)

    def rate_headers(self, key: str, consume: bool) -> tuple[bool, dict[str, str]]:
        """Sliding windows of 1 s and 60 s per API key. Returns (allowed, RateLimit-* headers)."""
        cfg = self.config
        now = time.monotonic()
        with self._lock:
            window = self._windows.setdefault(key, deque())
            while window and now - window[0] >= 60:
                window.popleft()
            in_second = sum(1 for t in window if now - t < 1)
            limits = [(cfg.rate_per_second, 1.0, in_second), (cfg.rate_per_minute, 60.0, len(window))]
            blocked = [(limit, span, used) for limit, span, used in limits if limit and used >= limit]
            allowed = not blocked
            if allowed and consume:
                window.append(now)
                in_second += 1
            remaining = min(
                [limit - (used + (1 if allowed and consume else 0)) for limit, _, used in limits if limit] or [999]
            )
            reset = 1
            for limit, span, _ in blocked:
                recent = [t for t in window if now - t < span]
                oldest = recent[-limit] if len(recent) >= limit else recent[0]
                reset = max(reset, math.ceil(span - (now - oldest)))
        parts = [f"{cfg.rate_per_second}" if cfg.rate_per_second else f"{cfg.rate_per_minute}"]
        if cfg.rate_per_minute:
            parts.append(f"{cfg.rate_per_minute};w=60")
        if cfg.rate_per_second:
            parts.append(f"{cfg.rate_per_second};w=1")
        headers = {
            "RateLimit-Limit": ", ".join(parts),
            "RateLimit-Remaining": str(max(0, remaining)),
            "RateLimit-Reset": str(reset),
        }
        return allowed, headers

    def charge(self, cost: float) -> bool:
        with self._lock:
            if self.config.credits is not None and self._spent + cost > self.config.credits + 1e-9:
                return False
            self._spent += cost
            return True

    def refund(self, cost: float) -> None:
        with self._lock:
            self._spent -= cost

    def record(self, call: CallRecord) -> None:
        call.finished = time.monotonic()
        with self._lock:
            self.calls.append(call)
        if self.log:
            self.log(
                f"POST {call.path} {call.status} x-request-id={call.request_id} images={call.images_returned}"
                + (f" fault={call.fault}" if call.fault else "")
            )

    def connector(self, name: str, field: str, headers: dict[str, str] | None = None) -> Connector:
        """The named storage; an unknown name is a 400 (Claid cannot retrieve from or write to it)."""
        found = self.connectors.get(name)
        if found is None:
            raise _Reply(
                400,
                *NO_STORAGE,
                f"storage {name!r} is not connected",
                {field: [f"unknown storage {name}"]},
                headers,
            )
        return found

    def fetch(self, url: str, field_name: str = "object.image_url") -> bytes:
        if url.lower().startswith("storage://"):
            name, path = destination_parts(url)
            connector = self.connector(name, field_name)
            try:
                return self.connectors.read(connector, unquote(path))
            except Exception as exc:
                raise _Reply(
                    400,
                    *NOT_RETRIEVABLE,
                    f"could not read the object from storage {name!r} ({type(exc).__name__})",
                    {field_name: ["not retrievable"]},
                ) from None
        try:
            response = httpx.get(url, timeout=10.0, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise _Reply(
                400,
                *NOT_RETRIEVABLE,
                f"could not download the object ({type(exc).__name__})",
                {field_name: ["not retrievable"]},
            ) from None
        if response.status_code != 200:
            raise _Reply(
                400,
                *NOT_RETRIEVABLE,
                f"downloading the object answered HTTP {response.status_code}",
                {field_name: ["not retrievable"]},
            )
        return response.content


class _Handler(BaseHTTPRequestHandler):
    owner: ClaidEmulator
    server_version = "claid-emulator/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the owner logs one line per request
        return

    # --- plumbing -------------------------------------------------------------------------------------
    def _send(
        self,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
        request_id: str | None = None,
    ) -> None:
        payload = raw if raw is not None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-request-id", request_id or uuid.uuid4().hex)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _api_key(self, scope: str | None = None) -> str:
        auth = self.headers.get("Authorization", "")
        # An auth scheme is case-insensitive (RFC 9110): "bearer x" is "Bearer x".
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not key:
            raise _Reply(401, *AUTH, "Authorization is required.")
        if key not in self.owner.config.api_keys:
            raise _Reply(401, *AUTH, "The API key is not valid.")
        scopes = self.owner.config.key_scopes.get(key)
        if scope is not None and scopes is not None and scope not in scopes:
            raise _Reply(403, *FORBIDDEN, "Not enough permissions.")
        return key

    def _json_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise _Reply(400, *VALIDATION, "the request body is not valid JSON", {"body": ["invalid JSON"]}) from None
        # `"\ud800"` is valid JSON and no text at all: answered, rather than failing wherever the string is used.
        broken = unpaired_surrogates(body)
        if broken:
            raise _Reply(
                422, *VALIDATION, "Validation error", {p: ["not valid Unicode text (a lone surrogate)"] for p in broken}
            )
        return body

    # --- routes ---------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        try:
            if path.startswith("/tmp/"):
                return self._tmp(path)
            if path == "/_emulator/stats":
                return self._send(200, self.owner.stats())
            self._api_key(SCOPES["storage"])
            if path == "/v1/storage/storage-types":
                return self._send(200, {"data": [{"type": t} for t in ("s3", "gcs", "web_folder")]})
            if path == "/v1/storage/storages":
                return self._send(200, {"data": [c.public() for c in self.owner.connectors.all()]})
            raise _Reply(404, *NOT_FOUND, f"no route GET {path}")
        except _Reply as reply:
            self._send(reply.status, reply.body, reply.headers)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path in SCENE_PATHS:
            return self._billed(path, "scene")
        if path in EDIT_PATHS:
            return self._billed(path, "edit")
        try:
            self._api_key(SCOPES["storage"])
            if path == "/v1/storage/storages":
                return self._create_storage(self._json_body())
            raise _Reply(404, *NOT_FOUND, f"no route POST {path}")
        except _Reply as reply:
            self._send(reply.status, reply.body, reply.headers)

    def _tmp(self, path: str) -> None:
        token = path.split("/")[2] if path.count("/") >= 2 else ""
        found = self.owner.tmp.get(token)
        if found is None:
            raise _Reply(404, *NOT_FOUND, "no such temporary image")
        if found is False:
            raise _Reply(410, *GONE, "this temporary image has expired")
        data, mime = found
        self._send(200, None, raw=data, content_type=mime)

    def _create_storage(self, body: Any) -> None:
        details: dict[str, list[str]] = {}
        if not isinstance(body, dict):
            raise _Reply(422, *VALIDATION, "Validation error", {"body": ["must be an object"]})
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 50:
            details["name"] = ["a string of 1 to 50 characters"]
        if body.get("type") != "s3":
            details["type"] = ["only s3 is supported by the emulator"]
        params: dict[str, Any] = body["parameters"] if isinstance(body.get("parameters"), dict) else {}
        creds: dict[str, Any] = params["credentials"] if isinstance(params.get("credentials"), dict) else {}
        if not isinstance(params.get("bucket"), str) or not params.get("bucket"):
            details["parameters.bucket"] = ["required"]
        for field_name in ("access_key", "secret_access_key"):
            if not isinstance(creds.get(field_name), str) or not creds.get(field_name):
                details[f"parameters.credentials.{field_name}"] = ["required"]
        if details:
            raise _Reply(422, *VALIDATION, "Validation error", details)
        try:
            connector = self.owner.connectors.add(
                str(name),
                params["bucket"],
                str(params.get("path", "")),
                creds["access_key"],
                creds["secret_access_key"],
            )
        except KeyError:
            raise _Reply(409, *STORAGE_CONFLICT, f"a storage named {name!r} exists") from None
        self._send(200, {"data": connector.public()})

    def _billed(self, path: str, kind: str) -> None:
        self.owner._enter()
        try:
            self._billed_request(path, kind)
        finally:
            self.owner._leave()

    def _billed_request(self, path: str, kind: str) -> None:
        """scene/create and image edit alike: auth and scope, faults, the account's one rate limit, validation,
        the charge (402 when it does not fit), the latency, the work, and a lost or dropped answer on demand."""
        owner = self.owner
        request_id = uuid.uuid4().hex
        call = CallRecord(request_id=request_id, path=path, status=0, kind=kind, started=time.monotonic())
        headers: dict[str, str] = {}
        try:
            key = self._api_key(SCOPES[kind])
            body = self._json_body()
            call.body = body if isinstance(body, dict) else None
            fault = owner.draw_fault()
            call.fault = fault
            if fault == "drop":
                raise _Drop()
            if fault == "500":
                raise _Reply(500, *SERVER_ERROR, "Internal server error")
            if fault == "429":
                _, headers = owner.rate_headers(key, consume=False)
                # Claid sends RateLimit-Reset, never Retry-After: a client must fall back to it.
                headers.update({"RateLimit-Remaining": "-1", "RateLimit-Reset": "1"})
                raise _Reply(429, *RATE_LIMITED, "Too many requests", headers=headers)
            if fault == "slow":
                time.sleep(owner.config.slow_seconds)
            allowed, headers = owner.rate_headers(key, consume=True)
            if not allowed:
                headers["RateLimit-Remaining"] = "-1"  # Claid's value once the limit is exceeded
                raise _Reply(429, *RATE_LIMITED, "Too many requests", headers=headers)
            cost, produce = (
                self._scene_plan(body, call, headers) if kind == "scene" else self._edit_plan(body, call, headers)
            )
            if not owner.charge(cost):
                raise _Reply(402, *NO_CREDITS, "No API calls left", headers=headers)
            # Claid answers when the images are made and stored. A client that hangs up meanwhile does not stop
            # it: the images are still written and charged.
            time.sleep(call.latency)
            try:
                payload = produce()
            except BaseException:
                owner.refund(cost)
                raise
            call.credits_charged = cost
            call.status = 200
            if fault == "lost":
                raise _Drop()
            owner.record(call)
            try:
                self._send(200, payload, headers, request_id=request_id)
            except OSError:  # the client gave up waiting: it was charged all the same
                call.answered = False
        except _Drop:
            call.answered = False
            owner.record(call)
            self.close_connection = True
            self.connection.close()  # no status line, no body: the client sees a dropped connection
        except _Reply as reply:
            call.status = reply.status
            owner.record(call)
            self._send(
                reply.status,
                {"detail": reply.body} if reply.status == 429 else reply.body,
                {**headers, **reply.headers},
                request_id=request_id,
            )

    def _scene_plan(self, body: Any, call: CallRecord, headers: dict[str, str]) -> tuple[float, Any]:
        owner = self.owner
        try:
            request = parse(body)
        except Invalid as exc:
            raise _Reply(422, *VALIDATION, "Validation error", exc.details, headers) from None
        call.image_url = request.image_url.split("?", 1)[0]
        call.destination = request.output.destination
        call.number_of_images = request.output.number_of_images
        cost = CREDITS_PER_IMAGE * request.output.number_of_images + (
            AUTOPROMPT_CREDITS if request.scene.autoprompt else 0.0
        )
        connector = None
        if request.output.destination:
            name, _ = destination_parts(request.output.destination)
            connector = owner.connector(name, "output.destination", headers)
        scene = body.get("scene") if isinstance(body.get("scene"), dict) else {}
        call.latency = owner.latency.draw(request.output.number_of_images, scene.get("preference"), request.scene.model)

        def produce() -> dict[str, Any]:
            payload = self._generate(request, connector, call)
            call.images_returned = len(payload["data"]["output"])
            return payload

        return cost, produce

    def _edit_plan(self, body: Any, call: CallRecord, headers: dict[str, str]) -> tuple[float, Any]:
        owner = self.owner
        try:
            request = parse_edit(body)
        except Invalid as exc:
            raise _Reply(422, *VALIDATION, "Validation error", exc.details, headers) from None
        except Refused as exc:
            raise _Reply(400, *BAD_SIZE, "Bad request", exc.details, headers) from None
        call.image_url = request.input.split("?", 1)[0]
        call.destination = request.output.destination
        call.upscaled = request.upscale is not None
        cost = owner.config.upscale_credits if call.upscaled else owner.config.edit_credits
        connector = None
        if request.output.destination:
            name, _ = destination_parts(request.output.destination)
            connector = owner.connector(name, "output.destination", headers)
        call.latency = owner.latency.draw_edit(call.upscaled)

        def produce() -> dict[str, Any]:
            payload = self._edit(request, connector, call)
            call.images_returned = 1
            return payload

        return cost, produce

    def _edit(self, request: Any, connector: Connector | None, call: CallRecord) -> dict[str, Any]:
        owner = self.owner
        try:
            data = owner.fetch(request.input, "input")
            call.input_sha256 = hashlib.sha256(data).hexdigest()
            source = images.load_product(data)
        except ValueError as exc:
            raise _Reply(400, *NOT_RETRIEVABLE, str(exc), {"input": [str(exc)]}) from None
        try:
            picture = edits.edit(source, request)
        except edits.TooLarge as exc:
            raise _Reply(400, *BAD_SIZE, str(exc), {"operations.resizing": [str(exc)]}) from None
        fmt = request.output.format
        encoded = edits.encode_edit(picture, request.output)
        mime = edits.mime_of(fmt)
        call.output_size = picture.size
        output: dict[str, Any] = {
            "ext": fmt,
            "mps": round(picture.width * picture.height / 1e6, 3),
            "mime": mime,
            "format": fmt.upper(),
            "width": picture.width,
            "height": picture.height,
        }
        if connector is not None:
            _, dest_path = destination_parts(str(request.output.destination))
            dest_path = unquote(dest_path)
            if dest_path.endswith("/") or not dest_path:
                # A folder: the file keeps the input's name (so two edits of one input there share one).
                stem = posixpath.splitext(posixpath.basename(urlsplit(request.input).path))[0] or "image"
                dest_path = f"{dest_path}{stem}.{fmt}"
            key = owner.connectors.write(connector, dest_path, encoded, mime)
            call.output_key = key
            output.update(
                {
                    "object_key": key,
                    "object_bucket": connector.bucket,
                    "object_uri": f"s3://{connector.bucket}/{key}",
                    "claid_storage_uri": f"storage://{connector.name}/{dest_path}",
                }
            )
        else:
            token = owner.tmp.put(encoded, mime)
            output["tmp_url"] = f"{owner.base_url}/tmp/{token}/1.{fmt}"
        return {"data": {"input": _input_info(source), "output": output, "profiling": {}}}

    def _generate(self, request: Any, connector: Any, call: CallRecord) -> dict[str, Any]:
        owner = self.owner
        try:
            data = owner.fetch(request.image_url)
            digest = call.input_sha256 = hashlib.sha256(data).hexdigest()
            product = images.load_product(data)
        except ValueError as exc:
            raise _Reply(400, *NOT_RETRIEVABLE, str(exc), {"object.image_url": [str(exc)]}) from None
        size = images.canvas_size(request.scene.aspect_ratio)
        fmt = request.output.format
        ext, mime = fmt, images.MIME[fmt]
        outputs = []
        folder = None
        file_name = None
        if request.output.destination:
            _, dest_path = destination_parts(request.output.destination)
            dest_path = unquote(dest_path)
            if dest_path.endswith("/") or not dest_path:
                folder = dest_path
            else:
                file_name = dest_path
        for index in range(request.output.number_of_images):
            encoded = variants.variant(digest, product, request.scene, request.placement, size, index, request.output)
            # Optional fields that do not apply are left out, as Claid does, not sent as null.
            entry: dict[str, Any] = {
                "ext": ext,
                "mps": round(size[0] * size[1] / 1e6, 3),
                "mime": mime,
                "format": fmt.upper(),
                "width": size[0],
                "height": size[1],
            }
            if connector is not None:
                if folder is not None:
                    rel = f"{folder}variant-{index + 1}.{ext}"
                else:
                    stem, dot, suffix = str(file_name).rpartition(".")
                    rel = (
                        str(file_name)
                        if index == 0
                        else (f"{stem}-{index + 1}.{suffix}" if dot else f"{file_name}-{index + 1}")
                    )
                key = owner.connectors.write(connector, rel, encoded, mime)
                entry.update(
                    {
                        "object_key": key,
                        "object_bucket": connector.bucket,
                        "object_uri": f"s3://{connector.bucket}/{key}",
                        "claid_storage_uri": f"storage://{connector.name}/{rel}",
                    }
                )
            else:
                token = owner.tmp.put(encoded, mime)
                entry["tmp_url"] = f"{owner.base_url}/tmp/{token}/{index + 1}.{ext}"
            outputs.append(entry)
        return {"data": {"input": _input_info(product), "output": outputs, "profiling": {}}}


def _input_info(image: Any) -> dict[str, Any]:
    return {
        "ext": (image.format or "").lower(),
        "mps": round(image.width * image.height / 1e6, 3),
        "mime": input_mime(image.format),
        "format": image.format,
        "width": image.width,
        "height": image.height,
    }


def input_mime(fmt: str | None) -> str:
    return {
        "JPEG": "image/jpeg",
        "PNG": "image/png",
        "WEBP": "image/webp",
        "GIF": "image/gif",
        "BMP": "image/bmp",
        "TIFF": "image/tiff",
        "AVIF": "image/avif",
    }.get(fmt or "", "application/octet-stream")


def record_as_dict(call: CallRecord) -> dict[str, Any]:
    return asdict(call)
