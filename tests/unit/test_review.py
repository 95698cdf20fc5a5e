"""The review server's request parsing and the service's pure rules (the page itself: tests/browser)."""

from __future__ import annotations

import json

import pytest
from backdrop_kit.review.server import choice, upload_filter
from backdrop_kit.review.service import ReviewError, awaiting_review, describe_selection, retry_credits


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
    item = {
        "version": 2,
        "job_id": "abc",
        "selection": json.dumps({"variants": [3, 1], "chosen_by": "person"}),
        "targets": json.dumps([{"key": "published/cup.png/1.jpeg"}, {"key": "published/cup.png/2.jpeg"}]),
    }
    assert describe_selection(item) == {
        "version": 2,
        "job_id": "abc",
        "variants": [3, 1],
        "chosen_by": "person",
        "published": ["published/cup.png/1.jpeg", "published/cup.png/2.jpeg"],
    }
    assert describe_selection(None) is None
