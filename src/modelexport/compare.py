"""Verdicts: current results against the baseline, per model. Pure functions, no torch.

A time regression needs all three: the median slower by more than the threshold, the
slowdown significant (Mann-Whitney, or non-overlapping ranges with too few samples), and
larger than an absolute floor. Other gates: a failed export, an invalid sidecar, a failed
checker or parity check, more unattributed nodes, a node count or file size grown beyond
its threshold.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from modelexport import stats
from modelexport.manifest import AllowRegression, Thresholds

REGRESSED, IMPROVED, UNCHANGED = "regressed", "improved", "unchanged"
NEW, MISSING, FAILED = "new", "missing", "failed"
NOT_COMPARABLE, ACCEPTED = "not-comparable", "accepted"
FAILING = (REGRESSED, FAILED)  # verdicts that fail the build


@dataclass(frozen=True)
class Policy:
    """What a model is held to: its thresholds and an accepted regression, if any."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    allow: AllowRegression | None = None


@dataclass(frozen=True)
class Verdict:
    name: str
    verdict: str
    reasons: tuple[str, ...] = ()
    baseline_s: float | None = None  # median gated seconds
    current_s: float | None = None
    time: stats.TimeComparison | None = None
    accepted: str | None = None  # the reason given in the manifest


def compare_model(name: str, current: dict[str, Any] | None, baseline: dict[str, Any] | None,
                  policy: Policy, today: datetime.date, comparable: bool) -> Verdict:
    if current is None:
        return Verdict(name, MISSING, ("in the baseline, not in this run",),
                       baseline_s=_median(baseline))
    if current["status"] != "ok":
        return Verdict(name, FAILED, (current["error"],), baseline_s=_median(baseline))
    problems = _health(current)
    if problems:
        return Verdict(name, FAILED, tuple(problems), baseline_s=_median(baseline),
                       current_s=_median(current))
    if baseline is None or baseline["status"] != "ok":
        return Verdict(name, NEW, ("no baseline yet",), current_s=_median(current))

    limits = policy.thresholds
    time = stats.compare_times(current["samples"]["total"], baseline["samples"]["total"],
                               limits.alpha)
    reasons = _growth(current, baseline, limits)
    slower = (time.ratio > 1 + limits.time and time.significant and time.delta > limits.floor)
    if slower:
        reasons.insert(0, f"time +{100 * (time.ratio - 1):.1f} % "
                          f"({_median(baseline):.3f} s -> {_median(current):.3f} s)")
    faster = (time.ratio < 1 / (1 + limits.time) and -time.delta > limits.floor
              and stats.compare_times(baseline["samples"]["total"],
                                      current["samples"]["total"], limits.alpha).significant)
    common = {"baseline_s": _median(baseline), "current_s": _median(current), "time": time}
    if not comparable:
        return Verdict(name, NOT_COMPARABLE, ("environment differs from the baseline's",),
                       **common)
    if reasons:
        allow = policy.allow
        if allow is not None and allow.until >= today:
            return Verdict(name, ACCEPTED, tuple(reasons), accepted=allow.reason, **common)
        return Verdict(name, REGRESSED, tuple(reasons), **common)
    return Verdict(name, IMPROVED if faster else UNCHANGED, (), **common)


def _median(record: dict[str, Any] | None) -> float | None:
    if not record or record["status"] != "ok":
        return None
    return median(record["samples"]["total"])


def _health(record: dict[str, Any]) -> list[str]:
    problems = []
    if not record["schema_valid"]:
        problems.append("sidecar does not validate against its schema")
    validation = record["validation"]
    if validation.get("checker") is False:
        problems.append("onnx.checker failed")
    parity = validation.get("parity")
    if parity and not parity["passed"]:
        problems.append(f"onnxruntime differs from PyTorch by {parity['max_abs_diff']:.3g}")
    return problems


def _growth(current: dict[str, Any], baseline: dict[str, Any], limits: Thresholds
            ) -> list[str]:
    reasons = []
    now, before = current["statistics"], baseline["statistics"]
    if now["unattributed"] > before["unattributed"]:
        reasons.append(f"unattributed nodes {before['unattributed']} -> {now['unattributed']}")
    if now["nodes"] > before["nodes"] * (1 + limits.nodes):
        reasons.append(f"nodes {before['nodes']} -> {now['nodes']}")
    if current["onnx_bytes"] > baseline["onnx_bytes"] * (1 + limits.size):
        reasons.append(f"ONNX size {baseline['onnx_bytes']} -> {current['onnx_bytes']} bytes")
    return reasons


def compare(results: dict[str, Any], baseline: dict[str, Any] | None,
            policies: dict[str, Policy], today: datetime.date, comparable: bool
            ) -> list[Verdict]:
    """A verdict for every model in the results or the baseline, in a stable order."""
    base_models = baseline["models"] if baseline else {}
    names = list(results["models"]) + [n for n in base_models if n not in results["models"]]
    return [
        compare_model(name, results["models"].get(name), base_models.get(name),
                      policies.get(name, Policy()), today, comparable)
        for name in names
    ]


def failed(verdicts: list[Verdict]) -> bool:
    return any(v.verdict in FAILING for v in verdicts)
