"""The measures that run beside the burst come back from a child process whole."""

import argparse
import pickle

from bench import traffic
from bench.__main__ import _side_arguments


def test_traffic_counters_cross_a_process_boundary_and_keep_counting():
    counted = traffic.Traffic()
    counted.downloaded("RecorderFunction", 100)
    back = pickle.loads(pickle.dumps(counted))
    back.downloaded("RecorderFunction", 1)
    assert back.http_bytes_downloaded["RecorderFunction"] == 101


def test_the_child_measures_what_this_run_would_have_measured_alone():
    assert _side_arguments(argparse.Namespace(quick=True, ceiling_uploads=None)) == ["--quick"]
    assert _side_arguments(argparse.Namespace(quick=False, ceiling_uploads=300)) == ["--ceiling-uploads", "300"]
