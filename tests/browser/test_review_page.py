"""`backdrop review` in a real browser: a person chooses variant 3 and it is published at the photo's stable key."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from backdrop.publishing import METADATA_JOB, METADATA_VARIANT, VARIANTS_PUBLISHED
from backdrop_kit.cli import main
from playwright.sync_api import Page, expect

from .conftest import PHOTO, Pipeline, Review

# Every breach of the page's policy, as the page itself sees it (Chromium also logs each on the console).
RECORD_VIOLATIONS = """
window.violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.violations.push({ directive: event.effectiveDirective, blocked: event.blockedURI });
  console.info("recorded policy violation");
});
"""


def wait_for_images(page: Page) -> None:
    """Every image on the page loaded. Checked through Playwright's own assertions: a predicate given to
    wait_for_function is evaluated as a string in the page, which its policy (no 'unsafe-eval') refuses."""
    images = page.locator("img")
    expect(images.first).to_be_attached()
    for index in range(images.count()):
        expect(images.nth(index)).to_have_js_property("complete", True)
        expect(images.nth(index)).not_to_have_js_property("naturalWidth", 0)


def open_page(browser: Any, review: Review) -> Page:
    page: Page = browser.new_page(viewport={"width": 1680, "height": 1000})
    page.goto(review.server.url())
    expect(page.locator("#status")).to_contain_text("1 upload awaiting review")
    return page


def card(page: Page, review: Review) -> Any:
    return page.locator(f'section[data-job-id="{review.job["job_id"]}"]')


def body_of(review: Review, key: str) -> bytes:
    s3 = review.pipeline.s3
    return bytes(s3.get_object(Bucket=review.pipeline.bucket, Key=key)["Body"].read())


def test_a_person_chooses_variant_three_and_it_is_published(review: Review, browser: Any, artifacts: Path) -> None:
    job_id = review.job["job_id"]
    variants = [o["key"] for o in json.loads(review.job["detail"])["outputs"]]
    page = open_page(browser, review)
    stale = open_page(browser, review)  # a second tab, still showing version 0
    upload = card(page, review)
    expect(upload.locator("button.variant")).to_have_count(4)
    expect(upload.get_by_role("button", name="Try again (8 credits)")).to_be_visible()

    upload.focus()
    page.keyboard.press("3")
    expect(upload.locator('button.variant[data-variant="3"]')).to_have_attribute("aria-pressed", "true")
    upload.get_by_role("button", name="Publish").click()

    expect(page.locator("#status")).to_contain_text("Published incoming/mugs/espresso-cup.png (version 1)")
    expect(upload.locator(".message")).to_contain_text("Published version 1")
    expect(upload.locator(".message")).to_contain_text("renditions on their way: 1-800.webp")
    stable = f"published/mugs/espresso-cup.png/1{posixpath.splitext(variants[2])[1]}"  # the only one chosen
    assert body_of(review, stable) == body_of(review, variants[2])
    metadata = review.pipeline.s3.head_object(Bucket=review.pipeline.bucket, Key=stable)["Metadata"]
    assert metadata[METADATA_JOB] == job_id and metadata[METADATA_VARIANT] == "3"
    published = [e for e in review.pipeline.stack.bus_events() if e["detail-type"] == VARIANTS_PUBLISHED]
    assert [(e["detail"]["version"], e["detail"]["selection"]["variants"]) for e in published] == [(1, [3])]
    assert published[0]["detail"]["selection"]["chosen_by"] == "person"

    # The profile asks for an 800 px WEBP of what is published: once Claid has made it, the page shows it with the
    # size the browser finds in the file.
    review.pipeline.drain()
    page.locator("#awaiting").uncheck()
    page.get_by_role("button", name="Show").click()
    expect(upload.locator(".renditions figcaption")).to_have_text("1-800.webp · 800 webp · 800\u00d7800 px")
    wait_for_images(page)
    page.screenshot(path=str(artifacts / "review-page.png"), full_page=True)

    # The other tab chose against version 0: refused with the reason, and nothing changes.
    other = card(stale, review)
    other.locator('button.variant[data-variant="1"]').click()
    stale.keyboard.press("Enter")
    expect(other.locator(".message")).to_contain_text("Not published (version_conflict)")
    expect(other.locator(".message")).to_contain_text("reload and choose again")
    expect(stale.locator("#status")).to_have_class("error")
    assert body_of(review, stable) == body_of(review, variants[2])


def test_try_again_shows_its_cost_asks_first_and_goes_through_the_upload_path(review: Review, browser: Any) -> None:
    page = open_page(browser, review)
    upload = card(page, review)
    upload.get_by_role("button", name="Try again (8 credits)").click()
    confirm = upload.get_by_role("group", name="Confirm trying again")
    expect(confirm).to_be_visible()
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    assert len(review.pipeline.stack.job_items()) == 1  # nothing sent without the confirmation

    upload.get_by_role("button", name="Try again (8 credits)").click()
    confirm.get_by_role("button", name="Yes, spend up to 8 credits").click()
    expect(page.locator("#status")).to_contain_text("is being generated again")
    review.pipeline.drain()
    jobs = review.pipeline.stack.job_items()
    assert len(jobs) == 2 and all(j["status"] == "succeeded" and j["source_key"] == PHOTO for j in jobs)

    # The photo deleted meanwhile: a plain error on the page, and no stack trace.
    review.pipeline.s3.delete_object(Bucket=review.pipeline.bucket, Key=PHOTO)
    upload.get_by_role("button", name="Try again (8 credits)").click()
    confirm.get_by_role("button", name="Yes, spend up to 8 credits").click()
    expect(upload.locator(".message")).to_have_text(
        f"Not tried again: {PHOTO} is no longer in the bucket: upload the photo again instead"
    )
    expect(page.locator("#status")).to_have_class("error")


def test_the_page_runs_under_its_policy_and_keeps_the_token_out_of_urls_and_history(
    review: Review, browser: Any
) -> None:
    """Chromium enforces the page's Content-Security-Policy: the page must work with no inline script or style,
    and after the first load no address (the tab's, an image's, the API's) carries the token."""
    token = review.server.token
    page: Page = browser.new_page(viewport={"width": 1680, "height": 1000})
    page.add_init_script(RECORD_VIOLATIONS)  # runs before the page's own script, whatever its policy
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    page.goto(review.server.url(days=7))
    expect(page.locator("#status")).to_contain_text("1 upload awaiting review")
    wait_for_images(page)
    upload = card(page, review)
    upload.locator('button.variant[data-variant="2"]').click()  # script-driven, and styled by page.css
    expect(upload.locator('button.variant[data-variant="2"] .order')).to_have_text("main")
    assert page.evaluate("getComputedStyle(document.querySelector('.variant .number')).position") == "absolute"
    upload.get_by_role("button", name="Publish").click()
    expect(upload.locator(".message")).to_contain_text("Published version 1")
    page.locator("#awaiting").uncheck()
    page.get_by_role("button", name="Show").click()  # the filters form: sent through fetch, never submitted
    expect(page.locator("#status")).to_contain_text("1 upload recorded in the last 7 days")

    # The token was in the first request only; the address bar, the tab's history, every image and API request
    # are without it.
    assert requests[0] == review.server.url(days=7)
    assert [url for url in requests[1:] if token in url] == []
    assert {urlsplit(url).path for url in requests[1:]} >= {"/", "/page.js", "/page.css", "/api/uploads", "/api/image"}
    assert page.url == f"{review.base}/?days=7"
    history = page.context.new_cdp_session(page).send("Page.getNavigationHistory")
    entries = [entry["url"] for entry in history["entries"]]
    assert entries[-1] == page.url and [url for url in entries if token in url] == []  # (first: about:blank)
    # The session cookie as the browser keeps it: out of the page's script's reach, for this site only, and gone
    # with the browser session (expires -1).
    assert page.evaluate("document.cookie") == ""
    [cookie] = page.context.cookies()
    assert (cookie["name"], cookie["value"]) == (review.server.cookie_name, review.server.session)
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["secure"]) == (True, "Strict", False)
    assert (cookie["domain"], cookie["path"], cookie["expires"]) == ("127.0.0.1", "/", -1)

    assert page.evaluate("window.violations") == []
    assert [line for line in console if "Content Security Policy" in line] == []

    # ... and the policy is in force, and the listener would have seen a breach: an inline script put into the
    # page is refused.
    with page.expect_console_message(lambda message: message.text == "recorded policy violation"):
        page.evaluate(
            "document.body.append(Object.assign(document.createElement('script'), { textContent: 'window.ran = 1' }))"
        )
    assert page.evaluate("window.ran") is None
    assert page.evaluate("window.violations") == [{"directive": "script-src-elem", "blocked": "inline"}]


def test_the_api_answers_a_signed_in_client_and_refuses_others(review: Review) -> None:
    """The stack behind the guards (the guards themselves, one by one: tests/unit/test_review.py)."""
    with httpx.Client(base_url=review.base) as http:
        assert http.get("/api/uploads").status_code == 403
        assert http.get("/").status_code == 403
        signed_in = http.get(review.server.url(), follow_redirects=True)  # as a browser opens the printed address
        assert (signed_in.status_code, signed_in.url) == (200, f"{review.base}/")
        assert review.server.token not in str(signed_in.url) and review.server.cookie_name in http.cookies

        assert http.get("/api/uploads").json()["uploads"][0]["job_id"] == review.job["job_id"]
        outside = http.get("/api/image", params={"key": "private/secret.png"})
        assert (outside.status_code, outside.json()) == (404, {"error": "no such image"})
        photo = http.get("/api/image", params={"key": PHOTO})
        assert (photo.status_code, photo.headers["Content-Type"]) == (200, "image/png")
        with_token = http.get("/api/image", params={"key": PHOTO, "token": review.server.token})
        assert with_token.status_code == 403  # never needed, so never taken

        rebound = http.get("/api/uploads", headers={"Host": "evil.example:80"})
        assert rebound.status_code == 403 and "127.0.0.1" in rebound.json()["error"]
        unknown = http.post("/api/select", json={"job_id": "0" * 32, "variants": [1]})
        assert unknown.status_code == 404 and unknown.json()["reason"] == "unknown_job"
        retry = http.post("/api/retry", json={"job_id": "0" * 32})
        assert retry.status_code == 404 and retry.json() == {"error": f"no job {'0' * 32} in this stack"}
        bad = http.post("/api/select", content=b"{not json")
        assert (bad.status_code, bad.json()) == (400, {"error": "the body is not JSON"})


def test_review_of_an_unknown_stack_says_so(make_pipeline: Callable[..., Pipeline], capsys: Any) -> None:
    make_pipeline()  # AWS is the local stack's moto
    assert main(["review", "--stack", "no-such-stack", "--no-browser"]) == 2  # a name not there: exit 2, as elsewhere
    assert "backdrop review: no stack named 'no-such-stack'" in capsys.readouterr().err
