"""The review server's request parsing, sign-in, guards and headers, and the service's pure rules (the page in a
browser: tests/browser)."""

from __future__ import annotations

import json
import threading
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from html.parser import HTMLParser
from importlib.resources import files
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from backdrop.store.selections import SelectionRecord
from backdrop_kit.review.server import STATIC, ReviewServer, choice, upload_filter
from backdrop_kit.review.service import (
    Image,
    ReviewError,
    ReviewService,
    UploadFilter,
    awaiting_review,
    describe_selection,
    retry_credits,
)


def test_the_filter_defaults_to_a_week_awaiting_review() -> None:
    wanted = upload_filter({})
    assert (wanted.days, wanted.profile, wanted.status, wanted.awaiting) == (7, None, None, True)
    wanted = upload_filter({"days": ["3"], "profile": ["mugs"], "status": ["failed"], "awaiting": ["0"]})
    assert (wanted.days, wanted.profile, wanted.status, wanted.awaiting) == (3, "mugs", "failed", False)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"days": ["week"]}, "days must be a whole number, not 'week'"),
        ({"days": ["0"]}, "days must be between 1 and 90"),
        ({"status": ["pending"]}, "status must be one of succeeded, failed, rejected"),
    ],
)
def test_a_bad_filter_is_a_plain_400(query: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ReviewError) as refused:
        upload_filter(query)
    assert (refused.value.status, refused.value.message) == (400, message)


def test_awaiting_review_means_succeeded_review_and_nothing_chosen() -> None:
    row = {"status": "succeeded", "publish": "review"}
    assert awaiting_review(row)
    assert not awaiting_review({**row, "selection_version": 1})
    assert not awaiting_review({**row, "publish": "first"})
    assert not awaiting_review({**row, "status": "failed"})


@pytest.mark.parametrize(
    "body",
    [
        {"variants": [1]},
        {"job_id": "", "variants": [1]},
        {"job_id": "j", "variants": []},
        {"job_id": "j", "variants": ["1"]},
        {"job_id": "j", "variants": [True]},
        {"job_id": "j", "variants": [1], "expected_version": -1},
    ],
)
def test_a_malformed_choice_is_refused_before_the_library(body: dict[str, object]) -> None:
    with pytest.raises(ReviewError) as refused:
        choice(body)
    assert refused.value.status == 400


def test_a_choice_keeps_the_order_of_the_variants() -> None:
    assert choice({"job_id": "j", "variants": [3, 1], "expected_version": 0}) == ("j", [3, 1], 0)
    assert choice({"job_id": "j", "variants": [2]}) == ("j", [2], None)


def test_trying_again_costs_what_the_job_settings_would() -> None:
    assert retry_credits({"number_of_images": 4}) == 8.0
    assert retry_credits({"number_of_images": 1, "autoprompt": True}) == 2.5
    assert retry_credits({}) is None  # a job rejected before its settings were resolved


def test_the_current_selection_as_the_page_shows_it() -> None:
    item = SelectionRecord(
        bucket="shop",
        source_key="incoming/cup.png",
        version=2,
        job_id="abc",
        selection=json.dumps({"variants": [3, 1], "chosen_by": "person"}),
        targets=json.dumps([{"key": "published/cup.png/1.jpeg"}, {"key": "published/cup.png/2.jpeg"}]),
    )
    assert describe_selection(item) == {
        "version": 2,
        "job_id": "abc",
        "variants": [3, 1],
        "chosen_by": "person",
        "published": ["published/cup.png/1.jpeg", "published/cup.png/2.jpeg"],
        "renditions": [],  # a selection from before renditions, or one without
    }
    assert describe_selection(None) is None


# --- the server's sign-in, guards and headers, over real HTTP on 127.0.0.1 with a stand-in for the stack ------


class _Body:
    """What botocore's StreamingBody offers the image route."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        yield from (self.data[i : i + size] for i in range(0, len(self.data), size))

    def close(self) -> None:
        pass


class _Stack:
    """A ReviewService stand-in: the server's guards are under test here, not the stack (tests/browser has that)."""

    actor = "arn:aws:iam::123456789012:user/reviewer"

    def __init__(self) -> None:
        self.chosen: list[tuple[str, list[int], int | None]] = []

    def uploads(self, wanted: UploadFilter) -> list[dict[str, Any]]:
        return [{"job_id": "j1", "days": wanted.days}]

    def image(self, key: str) -> Image:
        return Image(key, _Body(PNG), "image/png", len(PNG))

    def select(self, job_id: str, variants: list[int], expected: int | None) -> dict[str, Any]:
        self.chosen.append((job_id, variants, expected))
        return {"job_id": job_id, "version": 1, "variants": variants}

    def retry(self, job_id: str) -> dict[str, Any]:
        return {"job_id": job_id, "credits": 8.0}


PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
CHOICE = {"job_id": "j1", "variants": [2]}


@pytest.fixture
def server() -> Iterator[ReviewServer]:
    server = ReviewServer(cast(ReviewService, _Stack()), "shop")
    # A short poll: shutdown() waits for the loop's next look, half a second by default, at every teardown.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _base(server: ReviewServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def _sign_in(server: ReviewServer) -> dict[str, str]:
    """Open the printed address as a browser would, and keep the cookie it was given (as a Cookie header)."""
    first = httpx.get(server.url())
    assert first.status_code == 303
    cookie = first.headers["Set-Cookie"].split(";")[0]
    return {"Cookie": cookie}


def _policy(header: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in header.split(";") if d.strip()}


def test_the_first_load_trades_the_token_for_a_session_cookie_and_leaves_no_token_in_the_url(
    server: ReviewServer,
) -> None:
    first = httpx.get(server.url(days=3))
    assert first.status_code == 303
    assert first.headers["Location"] == "/?days=3"  # the rest of the address, without the token
    assert first.headers["Cache-Control"] == "no-store"
    name_value, *attributes = first.headers["Set-Cookie"].split("; ")
    name, value = name_value.split("=", 1)
    assert name == f"backdrop_review_{server.port}"  # cookies ignore ports: two servers must not share a name
    assert value and server.token not in first.headers["Set-Cookie"]  # the token itself travels no further
    # HttpOnly and SameSite=Strict, the whole site; no Expires/Max-Age (dies with the browser session), no Domain,
    # not Secure (plain http on 127.0.0.1: a Secure cookie would never be sent back).
    assert sorted(attributes) == ["HttpOnly", "Path=/", "SameSite=Strict"]

    plain = httpx.get(server.url())
    assert plain.headers["Location"] == "/"
    page = httpx.get(_base(server) + plain.headers["Location"], headers={"Cookie": f"{name}={value}"})
    assert page.status_code == 200 and b'<script src="/page.js"' in page.content


def test_with_the_cookie_every_route_answers_and_a_post_goes_through(server: ReviewServer) -> None:
    cookie = _sign_in(server)
    base = _base(server)
    for path, kind in [
        ("/", "text/html"),
        ("/page.js", "text/javascript"),
        ("/page.css", "text/css"),
        ("/api/uploads?days=2", "application/json"),
        ("/api/image?key=incoming/cup.png", "image/png"),
    ]:
        answer = httpx.get(base + path, headers=cookie)
        assert (answer.status_code, answer.headers["Content-Type"].split(";")[0]) == (200, kind), path
    page_origin = {**cookie, "Origin": base, "Sec-Fetch-Site": "same-origin"}  # what the page's fetch sends
    chosen = httpx.post(base + "/api/select", headers=page_origin, json=CHOICE)
    assert chosen.json() == {"job_id": "j1", "version": 1, "variants": [2]}
    assert httpx.post(base + "/api/retry", headers=cookie, json={"job_id": "j1"}).status_code == 202
    # Other cookies on 127.0.0.1 (any port shares them) do not get in the way.
    crowded = {"Cookie": f'_xsrf=2|a|b; theme; {cookie["Cookie"]}; other="x y"'}
    assert httpx.get(base + "/api/uploads", headers=crowded).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/page.js"),
        ("GET", "/page.css"),
        ("GET", "/api/uploads"),
        ("GET", "/api/image?key=incoming/cup.png"),
        ("POST", "/api/select"),
        ("POST", "/api/retry"),
        ("GET", "/no-such-page"),
    ],
)
def test_without_the_cookie_nothing_answers(server: ReviewServer, method: str, path: str) -> None:
    answer = httpx.request(method, _base(server) + path, json=CHOICE if method == "POST" else None)
    assert answer.status_code == 403
    assert answer.json() == {
        "error": "not signed in: open the address `backdrop review` printed (it signs this browser in once)"
    }
    # A wrong cookie, or this session under another port's name (another review server), is no better.
    for cookie in (f"{server.cookie_name}=guess", f"backdrop_review_1={server.session}"):
        assert httpx.request(method, _base(server) + path, headers={"Cookie": cookie}).status_code == 403


def test_a_wrong_token_gets_no_cookie(server: ReviewServer) -> None:
    base = _base(server)
    for query in ("token=guess", "token=", f"token={server.token}&token=guess"):
        refused = httpx.get(f"{base}/?{query}")
        assert refused.status_code == 403 and "Set-Cookie" not in refused.headers, query


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/uploads?token={token}"),
        ("GET", "/api/image?key=incoming/cup.png&token={token}"),
        ("GET", "/page.js?token={token}"),
        ("POST", "/api/select?token={token}"),
    ],
)
def test_the_token_in_any_other_url_is_refused_cookie_or_not(server: ReviewServer, method: str, path: str) -> None:
    url = _base(server) + path.format(token=server.token)
    for headers in ({}, _sign_in(server)):
        answer = httpx.request(method, url, headers=headers, json=CHOICE if method == "POST" else None)
        assert answer.status_code == 403
        assert "the review token belongs only in the address `backdrop review` printed" in answer.json()["error"]
    # ... which the page never needs: the same request without it, with the cookie, answers.
    cookie = _sign_in(server)
    plain = url.replace(f"token={server.token}", "").rstrip("?&")
    assert httpx.request(method, plain, headers=cookie, json=CHOICE if method == "POST" else None).is_success


def test_another_host_is_refused_even_with_the_token_or_the_cookie(server: ReviewServer) -> None:
    rebound = {"Host": "evil.example:80"}
    signing_in = httpx.get(server.url(), headers=rebound)
    assert signing_in.status_code == 403 and "Set-Cookie" not in signing_in.headers
    answer = httpx.get(_base(server) + "/api/uploads", headers={**_sign_in(server), **rebound})
    assert answer.status_code == 403 and "127.0.0.1" in answer.json()["error"]
    localhost = {**_sign_in(server), "Host": f"localhost:{server.port}"}
    assert httpx.get(_base(server) + "/api/uploads", headers=localhost).status_code == 200


@pytest.mark.parametrize(
    "sent",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_post_from_another_page_is_refused_even_with_the_cookie(server: ReviewServer, sent: dict[str, str]) -> None:
    answer = httpx.post(_base(server) + "/api/select", headers={**_sign_in(server), **sent}, json=CHOICE)
    assert (answer.status_code, answer.json()) == (
        403,
        {"error": "only the review page itself can choose or try again"},
    )
    assert cast(_Stack, server.service).chosen == []


def test_the_page_policy_allows_only_its_own_files_and_every_answer_is_hardened(server: ReviewServer) -> None:
    cookie = _sign_in(server)
    base = _base(server)
    page = httpx.get(base + "/", headers=cookie)
    policy = _policy(page.headers["Content-Security-Policy"])
    assert not any("'unsafe-" in source for sources in policy.values() for source in sources)
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'none'"]
    assert policy["img-src"] == policy["connect-src"] == ["'self'"]
    assert policy["base-uri"] == policy["form-action"] == policy["frame-ancestors"] == ["'none'"]

    answers = [
        page,
        httpx.get(server.url()),
        httpx.get(base + "/page.js", headers=cookie),
        httpx.get(base + "/api/uploads", headers=cookie),
        httpx.get(base + "/api/image?key=incoming/cup.png", headers=cookie),
        httpx.get(base + "/api/uploads"),
    ]
    for answer in answers:
        assert answer.headers["Referrer-Policy"] == "no-referrer", answer.url
        assert answer.headers["X-Content-Type-Options"] == "nosniff", answer.url
        if answer is not page:  # data, never a document that may run or load anything
            assert _policy(answer.headers["Content-Security-Policy"])["default-src"] == ["'none'"], answer.url
    assert answers[4].headers["Vary"] == "Cookie"  # a cached image stays with this run's session


class _Inline(HTMLParser):
    """Whatever the page's policy would block: inline script, inline style, event handler attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        self.found += [f"<{tag} {name}>" for name in names if name.startswith("on") or name == "style"]
        if tag == "style" or (tag == "script" and not names.get("src")):
            self.found.append(f"<{tag}> without a file")
        self.open = tag

    def handle_data(self, data: str) -> None:
        if self.open in ("script", "style") and data.strip():
            self.found.append(f"<{self.open}> with a body")

    def handle_endtag(self, tag: str) -> None:
        self.open = None


def test_the_page_has_no_inline_script_style_or_handlers() -> None:
    html = files("backdrop_kit.review").joinpath("page.html").read_text()
    inline = _Inline()
    inline.feed(html)
    assert inline.found == []
    assert '<script src="/page.js" defer></script>' in html and '<link rel="stylesheet" href="/page.css">' in html


def test_the_page_files_are_package_data() -> None:
    """An installed kit (not an editable one) has only what package-data lists: the page is nothing without them."""
    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "backdrop_kit"
    ]
    review = root / "kit" / "backdrop_kit" / "review"
    served = [name for name, _ in STATIC.values()]
    assert {p.name for p in review.iterdir() if p.suffix in (".html", ".js", ".css")} == set(served)
    for name in served:
        assert any(fnmatch(f"review/{name}", pattern) for pattern in patterns), name


def test_a_selection_shows_its_renditions_and_which_are_made() -> None:
    from backdrop.renditions import RenditionSpec, plan

    renditions = [
        plan(
            RenditionSpec(width=size, height=size, format="webp"),
            position=1,
            variant=3,
            bucket="shop",
            folder="published/cup.png/",
            variant_key="generated/cup/j/variant-3.jpeg",
            source_size=(1024, 1024),
        ).model_dump()
        for size in (2048, 800)
    ]
    item = SelectionRecord(
        bucket="shop",
        source_key="incoming/cup.png",
        version=1,
        job_id="abc",
        selection=json.dumps({"variants": [3], "chosen_by": "person"}),
        targets=json.dumps([{"key": "published/cup.png/1.jpeg"}]),
        renditions=json.dumps(renditions),
    )
    shown = describe_selection(item, made=lambda key: key.endswith("2048.webp"))
    assert shown is not None and shown["renditions"] == [
        {
            "key": "published/cup.png/1-2048.webp",
            "spec": "2048 webp",
            "position": 1,
            "width": 2048,
            "height": 2048,
            "made": True,
        },
        {
            "key": "published/cup.png/1-800.webp",
            "spec": "800 webp",
            "position": 1,
            "width": 800,
            "height": 800,
            "made": False,
        },
    ]
