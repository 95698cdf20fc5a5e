"""Turns a record's measures into Powertools metrics (CloudWatch EMF on stdout: no API call)."""

from __future__ import annotations

from collections import defaultdict

from aws_lambda_powertools import Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from backdrop.measures import Measures, Unit

UNITS: dict[Unit, MetricUnit] = {
    "Count": MetricUnit.Count,
    "Milliseconds": MetricUnit.Milliseconds,
    "Percent": MetricUnit.Percent,
}


def add_measures(metrics: Metrics, measures: Measures) -> None:
    """Plain measures join the invocation's metric set; a measure with a dimension (Status, Reason) goes out as
    its own EMF document, since a metric set shares one set of dimensions. Call from one thread only."""
    with_dimension: dict[tuple[str, Unit, tuple[str, str]], float] = defaultdict(float)
    for m in measures.items:
        if m.dimension is None:
            metrics.add_metric(name=m.name, unit=UNITS[m.unit], value=m.value)
        else:
            with_dimension[(m.name, m.unit, m.dimension)] += m.value
    # The same `service` dimension as the invocation's metric set, so one alarm or graph can name both.
    dimensions = {**({"service": metrics.service} if metrics.service else {}), **metrics.default_dimensions}
    for (name, unit, (dimension, value)), total in with_dimension.items():
        with single_metric(
            name=name,
            unit=UNITS[unit],
            value=total,
            namespace=metrics.namespace,
            default_dimensions=dimensions,
        ) as metric:
            metric.add_dimension(name=dimension, value=value)
