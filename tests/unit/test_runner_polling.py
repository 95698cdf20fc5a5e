"""The runner's pollers wait longer between receives while a queue stays empty, and poll briskly again once
something arrives."""

from backdrop_kit.runner import IDLE_WAITS, _Idle


def test_an_empty_queue_is_polled_less_often_until_something_arrives():
    idle = _Idle()
    assert [idle.next_wait() for _ in range(6)] == [0.05, 0.1, 0.2, 0.4, 0.4, 0.4]
    idle.busy()
    assert idle.next_wait() == IDLE_WAITS[0]
