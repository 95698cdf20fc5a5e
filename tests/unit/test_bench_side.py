"""The measures that run beside the burst come back from a child process whole."""

import argparse
import pickle

from backdrop_kit.runner import RunStats

from bench import side, traffic
from bench.__main__ import _side_arguments


def test_counters_cross_a_process_boundary_and_keep_counting():
    counted, stats = traffic.Traffic(), RunStats()
    counted.downloaded("RecorderFunction", 100)
    stats.count("ProcessorFunction")
    assert side.Side  # importing bench.side lets the counters' locks cross as fresh ones
    back, back_stats = pickle.loads(pickle.dumps((counted, stats)))
    back.downloaded("RecorderFunction", 1)
    back_stats.count("ProcessorFunction")
    assert back.http_bytes_downloaded["RecorderFunction"] == 101 and back_stats.invocations["ProcessorFunction"] == 2


def test_the_child_measures_what_this_run_would_have_measured_alone():
    assert _side_arguments(argparse.Namespace(quick=True, ceiling_uploads=None)) == ["--quick"]
    assert _side_arguments(argparse.Namespace(quick=False, ceiling_uploads=300)) == ["--ceiling-uploads", "300"]
