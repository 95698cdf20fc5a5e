"""The sizing model on cases whose answer is known by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench import model

UNLIMITED = model.Design(batch_size=1, instances=1, side_by_side=1, per_second=0, per_minute=0)


def test_one_instance_without_limits_runs_the_uploads_one_after_another() -> None:
    outcome = model.simulate(UNLIMITED, model.Timing(), [2.0, 3.0, 5.0])
    assert outcome.calls == [(0.0, 2.0), (2.0, 5.0), (5.0, 10.0)]
    assert outcome.records_makespan == 10.0
    assert outcome.hand_backs == 0


def test_a_batch_lasts_as_long_as_its_slowest_record() -> None:
    design = replace(UNLIMITED, batch_size=3, side_by_side=3)
    outcome = model.simulate(design, model.Timing(), [1.0, 4.0, 2.0, 1.0])
    assert [(i.started, i.seconds, i.records) for i in outcome.invocations] == [(0.0, 4.0, 3), (4.0, 1.0, 1)]
    assert outcome.calls_makespan == 5.0


def test_batch_size_one_frees_each_place_when_its_own_call_ends() -> None:
    """Head-of-line blocking: the same places, the same latencies, the fourth upload starts at 1 s, not 4 s."""
    latencies = [1.0, 4.0, 2.0, 1.0]
    single = replace(UNLIMITED, instances=3)
    assert model.simulate(single, model.Timing(), latencies).calls_makespan == 4.0
    batched = replace(UNLIMITED, batch_size=3, side_by_side=3)
    assert model.simulate(batched, model.Timing(), latencies).calls_makespan == 5.0


def test_with_no_latency_variance_the_starts_follow_the_limiters_grid() -> None:
    design = model.Design(batch_size=10, instances=5, side_by_side=10, per_second=4, per_minute=120)
    grid = design.grid
    assert grid is not None
    outcome = model.simulate(design, model.Timing(), [10.0] * 20)
    starts = [start for start, _ in outcome.calls]
    assert starts == pytest.approx([grid.at(i) for i in range(20)])  # 4 in any 1.1 s window
    assert outcome.calls_makespan == pytest.approx(19 * 1.1 / 3 + 10.0, abs=1e-3)
    assert outcome.calls_makespan == pytest.approx(model.schedule_bound(design, [10.0] * 20))


def test_side_by_side_places_limit_an_invocation() -> None:
    design = replace(UNLIMITED, batch_size=4, side_by_side=2)
    outcome = model.simulate(design, model.Timing(), [1.0, 1.0, 1.0, 1.0])
    assert outcome.calls == [(0.0, 1.0), (0.0, 1.0), (1.0, 2.0), (1.0, 2.0)]


def test_the_stacks_own_time_adds_to_each_record() -> None:
    timing = model.Timing(before_call=0.5, after_call=0.25, recorder_seconds=1.0)
    outcome = model.simulate(UNLIMITED, timing, [2.0, 2.0])
    assert outcome.calls == [(0.5, 2.5), (3.25, 5.25)]
    assert outcome.record_times == [3.75, 6.5]


def test_one_recorder_serves_events_in_turn() -> None:
    design = replace(UNLIMITED, instances=3)
    timing = model.Timing(recorder_seconds=1.0, recorders=1)
    outcome = model.simulate(design, timing, [1.0, 1.0, 1.0])
    assert outcome.record_times == [2.0, 3.0, 4.0]
    unbounded = model.simulate(design, replace(timing, recorders=0), [1.0, 1.0, 1.0])
    assert unbounded.record_times == [2.0, 2.0, 2.0]


def test_a_slot_beyond_the_start_window_is_handed_back_and_taken_later() -> None:
    """Slots 1.1 s apart (2 per 1.1 s window), three records at once, a window of 1 s: the third slot (2.2 s) is
    out of reach."""
    design = model.Design(batch_size=3, instances=1, side_by_side=3, per_second=2, per_minute=0, start_window=1.0)
    outcome = model.simulate(design, model.Timing(), [0.5, 0.5, 0.5])
    assert outcome.hand_backs >= 1
    assert len(outcome.calls) == 3  # every upload is called once in the end
    starts = sorted(start for start, _ in outcome.calls)
    assert all(c - a > 1.1 for a, c in zip(starts, starts[2:], strict=False))  # never 3 in a 1.1 s window


def test_the_design_is_read_from_the_template() -> None:
    design = model.Design.from_template()
    assert (design.batch_size, design.instances, design.side_by_side) == (1, 50, 1)
    assert (design.per_second, design.per_minute) == (4, 120)
    assert design.start_window == 45.0  # Timeout 135 for the 90 s call budget
    assert model.Design.from_template({"ProcessorMaxConcurrency": "40"}).instances == 40


def test_draws_follow_the_emulators_seeded_model() -> None:
    assert model.draw_latencies(5, seed=3) == model.draw_latencies(5, seed=3)
    assert model.draw_latencies(3, median=0) == [0.0, 0.0, 0.0]


def test_calibration_recovers_the_stacks_own_time() -> None:
    """Without limits an invocation is its own time plus its slowest call, so the fit is exact."""
    design = model.Design(per_second=0, per_minute=0)
    latencies = model.draw_latencies(300)
    truth = model.Timing(before_call=0.8, recorder_seconds=0.2, recorders=1)
    run = model.simulate(design, truth, latencies)
    measured = model.Measured(
        design,
        latencies,
        run.invocations,
        [model.Invocation(t, 0.2, 1) for t in run.record_times],
        run.calls_makespan,
        run.records_makespan,
    )
    fitted = model.calibrate(measured)
    assert fitted.before_call == pytest.approx(0.8, abs=0.05)
    assert fitted.recorder_seconds == pytest.approx(0.2)
    assert fitted.recorders == 1


def test_more_instances_are_needed_at_ten_times_the_limits() -> None:
    design = model.Design.from_template()
    latencies = model.draw_latencies(3000)
    enough = model.instances_needed(design, model.Timing(), latencies)
    assert enough is not None and enough <= design.instances  # the template's default keeps up with the limits
    needed = model.instances_needed(design.scaled_limits(10), model.Timing(), latencies)
    assert needed is not None and needed > design.instances
