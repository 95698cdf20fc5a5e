"""The emulator's latency model: seeded, centred on its median, heavier for heavier requests, bounded."""

from __future__ import annotations

import statistics

import pytest
from backdrop_kit.emulator.latency import LatencyModel


def test_zero_median_is_instant():
    assert LatencyModel(0.0).draw(4, "best", "v2") == 0.0


def test_draws_are_reproducible_with_a_seed():
    a, b = LatencyModel(10.0, seed=7), LatencyModel(10.0, seed=7)
    assert [a.draw() for _ in range(20)] == [b.draw() for _ in range(20)]


def test_the_median_of_the_reference_call_is_the_given_median():
    model = LatencyModel(10.0, seed=1)
    draws = [model.draw() for _ in range(4000)]
    assert statistics.median(draws) == pytest.approx(10.0, rel=0.03)
    assert max(draws) <= model.longest(1, "optimal", "v1") + 1e-9
    assert sorted(draws)[int(0.99 * len(draws))] == pytest.approx(model.percentile_99(), rel=0.08)


def test_more_images_best_and_v2_take_longer_and_fast_less():
    shape = LatencyModel.shape
    assert shape(1) == 1.0
    assert shape(4) > shape(2) > shape(1)
    assert shape(4) < 4 * shape(1)  # images are generated together
    assert shape(1, "fast") < shape(1) < shape(1, "best")
    assert shape(1, model="v2") == shape(1, model="v2-beta") > shape(1, model="v1")


def test_negative_settings_are_refused():
    with pytest.raises(ValueError):
        LatencyModel(-1.0)
