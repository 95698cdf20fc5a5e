"""Turns a record's measures into Powertools metrics (CloudWatch EMF on stdout: no API call)."""

from __future__ import annotations

from collections import defaultdict

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from backdrop.measures import Measures, Unit

UNITS: dict[Unit, MetricUnit] = {
    "Count": MetricUnit.Count,
    "Milliseconds": MetricUnit.Milliseconds,
    "Percent": MetricUnit.Percent,
}


def add_measures(metrics: Metrics, measures: Measures) -> None:
    """Plain measures join the invocation's metric set. Measures with a dimension (Status, Reason) go out as one
    EMF document per dimension value, since a metric set shares one set of dimensions; EphemeralMetrics (not
    single_metric, which ignores POWERTOOLS_METRICS_DISABLED) keeps them apart from the shared set.
    Call from one thread only."""
    grouped: dict[tuple[str, str], dict[tuple[str, Unit], float]] = defaultdict(lambda: defaultdict(float))
    for m in measures.items:
        if m.dimension is None:
            metrics.add_metric(name=m.name, unit=UNITS[m.unit], value=m.value)
        else:
            grouped[m.dimension][(m.name, m.unit)] += m.value
    for (dimension, value), totals in grouped.items():
        document = EphemeralMetrics(namespace=metrics.namespace, service=metrics.service)
        for name, dim_value in metrics.default_dimensions.items():
            document.add_dimension(name=name, value=dim_value)
        document.add_dimension(name=dimension, value=value)
        for (name, unit), total in totals.items():
            document.add_metric(name=name, unit=UNITS[unit], value=total)
        document.flush_metrics()
