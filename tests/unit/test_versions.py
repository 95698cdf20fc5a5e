"""Which of two versions of one object is newer: sequencers first (right-padded), then LastModified."""

from __future__ import annotations

from backdrop.events import SourceObject
from backdrop.versions import is_newer, sequencer_order
from hypothesis import given
from hypothesis import strategies as st


def v(version: str | None = None, seq: str | None = None, modified: str | None = None) -> SourceObject:
    return SourceObject(bucket="b", key="incoming/mug.png", version_id=version, sequencer=seq, last_modified=modified)


def test_sequencers_of_different_lengths_compare_right_padded():
    # "0055AED6DCD90281E5" vs "0055AED6DCD90281E5A": the longer one, padded, is later only by its extra digit.
    assert is_newer(v("b", "0055AED6DCD90281E5A"), v("a", "0055AED6DCD90281E5"))
    assert not is_newer(v("a", "0055AED6DCD90281E5"), v("b", "0055AED6DCD90281E5A"))
    # Padding on the right compares leading digits first: "2" is "2000…", later than "1F", earlier than "21".
    assert sequencer_order("1F") < sequencer_order("2") < sequencer_order("21")
    assert sequencer_order("ab") == sequencer_order("AB")


def test_a_sequencer_outranks_time_and_time_decides_without_one():
    older_by_sequencer = v("a", "0055AED6DCD90281E5", "2026-12-01T10:00:05.000+00:00")
    newer_by_sequencer = v("b", "0055AED6DCD90281F0", "2026-12-01T10:00:01.000+00:00")  # multipart: started earlier
    assert is_newer(newer_by_sequencer, older_by_sequencer)
    backfilled = v("c", None, "2026-12-01T10:00:09.000+00:00")
    assert is_newer(backfilled, older_by_sequencer)
    assert not is_newer(v("d", None, "2026-12-01T09:00:00.000+00:00"), older_by_sequencer)


def test_ties_and_unknowns_keep_what_is_recorded():
    current = v("a", "0055AED6DCD90281E5", "2026-12-01T10:00:05.000+00:00")
    assert not is_newer(v("a", "0055AED6DCD90281E5"), current)  # the same version, delivered again
    assert not is_newer(v("b"), current)  # nothing to order by
    assert not is_newer(v("b", None, current.last_modified), current)  # same second
    assert is_newer(v("b"), None)  # nothing recorded yet
    assert is_newer(v("b", None, "2026-12-01T00:00:00.000+00:00"), v("a"))  # a pointer from before ordering


@given(st.lists(st.integers(min_value=0, max_value=2**72), min_size=2, max_size=8, unique=True))
def test_sequencers_of_one_length_order_as_their_values(values):
    width = max(len(f"{x:X}") for x in values)
    seqs = [f"{x:0{width}X}" for x in values]
    for a, sa in zip(values, seqs, strict=True):
        for b, sb in zip(values, seqs, strict=True):
            assert is_newer(v(str(a), sa), v(str(b), sb)) == (a > b)
