"""This run's measurements in the formats other tools keep history in: Bencher's metric
format (BMF) and github-action-benchmark's custom JSON. Those tools chart the numbers and
may alert on them; the verdict stays the gate's. Pure.

Each value is the median the verdict table shows as this run's; the bounds are the 95 %
interval of that median (distribution-free, ``stats.median_interval``), given only where
there are samples enough for one (6 and more). Names come from the manifest, which allows
no character that needs escaping beyond what JSON itself does.
"""

from __future__ import annotations

from typing import Any

from modelexport.gate.compare import Verdict
from modelexport.gate.metric import Metric
from modelexport.gate.results import Results
from modelexport.stats import median_interval

# Times in nanoseconds (the unit of Bencher's built-in latency measure), memory in bytes.
BASE_UNIT = {"s": 1e9, "ms": 1e6, "MB": 1e6}
SLUG = {"export time": "export-time", "export memory": "export-memory",
        "inference": "latency", "first token": "first-token"}


def bmf(results: Results) -> dict[str, dict[str, dict[str, float]]]:
    """Bencher Metric Format: per model a benchmark; measures ``export-time``, ``latency``
    (a decoder's: one decode step) and ``first-token`` in nanoseconds, ``export-memory``
    in bytes."""
    return {name: {SLUG[metric.name]: _bmf_value(metric)
                   for metric in record.metrics(paired=results.base is not None)}
            for name, record in results.measured.items()}


def _bmf_value(metric: Metric) -> dict[str, float]:
    scale = BASE_UNIT[metric.unit]
    value = {"value": metric.median * scale}
    interval = median_interval(metric.samples)
    if interval:
        value |= {"lower_value": interval[0] * scale, "upper_value": interval[1] * scale}
    return value


def benchmark_action(results: Results, verdicts: list[Verdict]) -> list[dict[str, Any]]:
    """github-action-benchmark's ``customSmallerIsBetter``: one entry per model and metric,
    named ``MODEL / METRIC`` (its charts group by ``/``), in the metric's unit; ``range``
    the wider side of the median's interval, ``extra`` the verdict and the change."""
    judged = {verdict.name: verdict for verdict in verdicts}
    entries = []
    for name, record in results.measured.items():
        verdict = judged.get(name)
        for metric in record.metrics(paired=results.base is not None):
            entry: dict[str, Any] = {"name": f"{name} / {metric.name}", "unit": metric.unit,
                                     "value": metric.median}
            interval = median_interval(metric.samples)
            if interval:
                wider = max(metric.median - interval[0], interval[1] - metric.median)
                entry["range"] = f"± {wider:.6g}"
            entry["extra"] = _extra(metric, verdict)
            entries.append(entry)
    return entries


def _extra(metric: Metric, verdict: Verdict | None) -> str:
    """``n 5; unchanged; +4.6 % p 0.345``: samples, and as far as the model was judged, its
    verdict and this metric's change."""
    parts = [f"n {len(metric.samples)}"]
    if verdict is not None:
        parts.append(verdict.outcome.value)
        change = verdict.change(metric.name)
        if change is not None:
            p = "n/a" if change.p_value is None else f"{change.p_value:.3g}"
            parts.append(f"{100 * (change.ratio - 1):+.1f} % p {p}")
    return "; ".join(parts)
