"""Credit arithmetic: 2 per image returned, +0.5 per request with a generated prompt."""

from decimal import Decimal

import pytest
from backdrop.credits import credits_for


@pytest.mark.parametrize(
    ("images", "autoprompt", "expected"),
    [(4, False, "8"), (1, False, "2"), (0, False, "0"), (4, True, "8.5"), (2, True, "4.5")],
)
def test_credits_for(images, autoprompt, expected):
    assert credits_for(images, autoprompt) == Decimal(expected)


def test_negative_images_refused():
    with pytest.raises(ValueError):
        credits_for(-1, False)
