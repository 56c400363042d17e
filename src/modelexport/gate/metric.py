"""What the gate measures, and the one rule that judges every measurement. Pure.

A ``Metric`` is a named set of samples in a unit, where lower is better (export time,
latency, memory) or higher (a throughput). Against its baseline's samples it is **worse**
when all three hold: its median moved the wrong way by more than the threshold, the move is
significant (one-sided Mann-Whitney U below alpha; with too few samples for the test to
reach alpha, only when the ranges do not overlap at all), and it is larger than the floor,
in the metric's own unit. **Better** is the same rule mirrored. Adding a metric is a
``Metric`` built from a measurement and a ``Rule`` from the manifest; nothing here changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median
from typing import Literal

from modelexport import stats

Better = Literal["lower", "higher"]
Direction = Literal["worse", "better", "same"]


@dataclass(frozen=True)
class Rule:
    """How far a metric may move before it counts."""

    threshold: float  # relative move of the median, 0.10 for 10 %
    alpha: float  # significance the move needs
    floor: float  # absolute move it must exceed, in the metric's unit


@dataclass(frozen=True)
class Metric:
    name: str  # as reports say it: "time", "inference"
    unit: str  # "s", "ms"
    samples: tuple[float, ...]  # what the verdict is decided on
    better: Better = "lower"

    @property
    def median(self) -> float:
        return median(self.samples)


@dataclass(frozen=True)
class Change:
    """How a metric moved against its baseline's, and what the rule makes of it."""

    name: str
    unit: str
    before: float  # the baseline's median
    after: float  # this run's median
    ratio: float  # after / before
    p_value: float | None  # of "worse"; None: too few samples for the test to reach alpha
    direction: Direction

    def reason(self) -> str:
        """``time +23.0 % (1.000 s -> 1.230 s)``."""
        return (f"{self.name} {100 * (self.ratio - 1):+.1f} % ({self.before:.3f} {self.unit} "
                f"-> {self.after:.3f} {self.unit})")


def judge(now: Metric, before: Metric, rule: Rule) -> Change:
    """``now`` against ``before`` under ``rule``: worse, better or the same."""
    if (now.name, now.unit, now.better) != (before.name, before.unit, before.better):
        raise ValueError(f"{now.name} ({now.unit}) cannot be judged against {before.name} "
                         f"({before.unit})")
    up, larger = _beyond(now.samples, before.samples, rule)
    down, smaller = _beyond(before.samples, now.samples, rule)
    worse, better = (up, down) if now.better == "lower" else (down, up)
    direction: Direction = "worse" if worse else "better" if better else "same"
    p_worse = larger.p_value if now.better == "lower" else smaller.p_value
    return Change(now.name, now.unit, before.median, now.median, larger.ratio, p_worse,
                  direction)


def _beyond(a: Sequence[float], b: Sequence[float], rule: Rule) -> tuple[bool, stats.Comparison]:
    """Whether ``a`` is larger than ``b`` by the rule: its threshold, significance and floor."""
    found = stats.greater(a, b, rule.alpha)
    return (found.ratio > 1 + rule.threshold and found.significant
            and found.delta > rule.floor), found
