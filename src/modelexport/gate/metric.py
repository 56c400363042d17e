"""What the gate measures, and the one rule that judges every measurement. Pure.

A ``Metric`` is a named set of samples in a unit, where lower is better (export time,
latency, memory) or higher (a throughput). Against its baseline's samples it is **worse**
when all three hold: its median moved the wrong way by more than the threshold, the move is
significant (one-sided Mann-Whitney U below alpha; with too few samples for the test to
reach alpha, only when the ranges do not overlap at all), and it is larger than the floor,
in the metric's own unit. **Better** is the same rule mirrored. Adding a metric is a
``Metric`` built from a measurement and a ``Rule`` from the manifest; nothing here changes.

Measured **paired** (the base of a pull request beside its head, sample ``i`` of each taken
one after the other), the same three conditions hold of the pairs instead: the median of
the ratios, the signed-rank test of their logarithms, the median of the differences. Load
that comes and goes slows both members of a pair and cancels in their ratio.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any, Literal

from modelexport import stats

Better = Literal["lower", "higher"]
DIGITS = {"MB": 1}  # decimals a value is shown with, by unit; 3 for the others


def amount(value: float, unit: str) -> str:
    """``1.230 s``, ``612.3 MB``: a value as reports show it."""
    return f"{value:,.{DIGITS.get(unit, 3)}f} {unit}"
Direction = Literal["worse", "better", "same"]


@dataclass(frozen=True)
class Rule:
    """How far a metric may move before it counts."""

    threshold: float  # relative move of the median, 0.10 for 10 %
    alpha: float  # significance the move needs
    floor: float  # absolute move it must exceed, in the metric's unit


@dataclass(frozen=True)
class Metric:
    name: str  # as reports say it: "export time", "export memory", "inference"
    unit: str  # "s", "ms", "MB"
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
    paired: bool = False  # judged on pairs measured side by side: ratio is their median
    interval: tuple[float, float] | None = None  # 95 % of the paired ratio; None: too few

    def reason(self) -> str:
        """``export time +23.0 % (1.000 s -> 1.230 s)``; paired, with the ratio's interval where
        there are pairs enough: ``inference +6.1 % (95 %: +4.0..+8.3 %; 1.000 ms -> ...)``."""
        spread = ""
        if self.interval:
            low, high = (100 * (end - 1) for end in self.interval)
            spread = f"95 %: {low:+.1f}..{high:+.1f} %; "
        return (f"{self.name} {100 * (self.ratio - 1):+.1f} % ({spread}"
                f"{amount(self.before, self.unit)} -> {amount(self.after, self.unit)}"
                f"{', paired' if self.paired else ''})")

    def to_json(self) -> dict[str, Any]:
        """One metric of the JSON report (``schemas/report.schema.json``)."""
        return {"name": self.name, "unit": self.unit, "baseline": self.before,
                "current": self.after, "ratio": self.ratio,
                "interval": list(self.interval) if self.interval else None,
                "p_value": self.p_value, "direction": self.direction, "paired": self.paired}


def judge(now: Metric, before: Metric, rule: Rule, paired: bool = False) -> Change:
    """``now`` against ``before`` under ``rule``: worse, better or the same. ``paired``:
    their samples were measured in pairs, ``now.samples[i]`` beside ``before.samples[i]``."""
    if (now.name, now.unit, now.better) != (before.name, before.unit, before.better):
        raise ValueError(f"{now.name} ({now.unit}) cannot be judged against {before.name} "
                         f"({before.unit})")
    test = stats.paired_greater if paired else stats.greater
    up, larger = _beyond(now.samples, before.samples, rule, test)
    down, smaller = _beyond(before.samples, now.samples, rule, test)
    worse, better = (up, down) if now.better == "lower" else (down, up)
    direction: Direction = "worse" if worse else "better" if better else "same"
    p_worse = larger.p_value if now.better == "lower" else smaller.p_value
    return Change(now.name, now.unit, before.median, now.median, larger.ratio, p_worse,
                  direction, paired,
                  stats.ratio_interval(now.samples, before.samples) if paired else None)


Test = Callable[[Sequence[float], Sequence[float], float], stats.Comparison]


def _beyond(a: Sequence[float], b: Sequence[float], rule: Rule,
            test: Test) -> tuple[bool, stats.Comparison]:
    """Whether ``a`` is larger than ``b`` by the rule: its threshold, significance and floor."""
    found = test(a, b, rule.alpha)
    return (found.ratio > 1 + rule.threshold and found.significant
            and found.delta > rule.floor), found
