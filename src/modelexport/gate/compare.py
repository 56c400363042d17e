"""Verdicts: current results against the baseline, per model. Pure functions, no torch.

A time regression needs all three: the median slower by more than the threshold, the
slowdown significant (Mann-Whitney, or non-overlapping ranges with too few samples), and
larger than an absolute floor. Other gates: a failed export, an invalid sidecar, a failed
checker or parity check, more unattributed nodes, a node count or file size grown beyond
its threshold, a changed graph where the policy says so (by default a changed input or
output signature), and, where the manifest profiles inference, a latency regression decided
like an export-time one. Timings compare only within one environment; the structure is
deterministic, so its gates hold across machines too.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace
from enum import Enum
from statistics import median
from typing import NamedTuple

from modelexport import diff
from modelexport.diff import StructureDiff
from modelexport.gate import stats
from modelexport.gate.manifest import (
    AllowRegression,
    InferencePolicy,
    StructurePolicy,
    Thresholds,
)
from modelexport.gate.records import Failed, Measured, ModelResult
from modelexport.gate.results import Results
from modelexport.profile import ModuleDelta, module_deltas


class Outcome(str, Enum):
    """A model's verdict. The value is what reports and JSON say."""

    REGRESSED = "regressed"
    IMPROVED = "improved"
    UNCHANGED = "unchanged"
    NEW = "new"
    MISSING = "missing"
    FAILED = "failed"
    NOT_COMPARABLE = "not-comparable"
    ACCEPTED = "accepted"

    def __str__(self) -> str:
        return self.value

    @property
    def fails_build(self) -> bool:
        return self in (Outcome.REGRESSED, Outcome.FAILED)


@dataclass(frozen=True)
class Policy:
    """What a model is held to: its thresholds and an accepted regression, if any."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    allow: AllowRegression | None = None
    structure: StructurePolicy = field(default_factory=StructurePolicy)
    inference: InferencePolicy | None = None


@dataclass(frozen=True)
class Verdict:
    name: str
    verdict: Outcome
    reasons: tuple[str, ...] = ()
    baseline_s: float | None = None  # median gated seconds
    current_s: float | None = None
    time: stats.TimeComparison | None = None
    accepted: str | None = None  # the reason given in the manifest
    structure: StructureDiff | None = None  # None: not compared (a side lacks a summary)
    timed: bool = False  # the timings were compared (same environment)
    inference: stats.TimeComparison | None = None  # latency, ms; None: not compared
    moved: tuple[ModuleDelta, ...] = ()  # where inference time moved, when it did

    @property
    def compared(self) -> bool:
        """Something of this model was compared with its baseline."""
        return self.timed or self.structure is not None


def compare_model(name: str, current: ModelResult | None, baseline: ModelResult | None,
                  policy: Policy, today: datetime.date, comparable: bool) -> Verdict:
    before = baseline if isinstance(baseline, Measured) else None
    before_s = before.median_s if before else None
    if current is None:
        return Verdict(name, Outcome.MISSING, ("in the baseline, not in this run",),
                       baseline_s=before_s)
    if isinstance(current, Failed):
        return Verdict(name, Outcome.FAILED, (current.error,), baseline_s=before_s)
    problems = _health(current)
    if problems:
        return Verdict(name, Outcome.FAILED, tuple(problems), baseline_s=before_s,
                       current_s=current.median_s)
    if before is None:
        return Verdict(name, Outcome.NEW, ("no baseline yet",), current_s=current.median_s)
    return _against_baseline(name, current, before, policy, today, comparable)


def _against_baseline(name: str, current: Measured, before: Measured, policy: Policy,
           today: datetime.date, comparable: bool) -> Verdict:
    limits = policy.thresholds
    found = (diff.diff(before.structure, current.structure)
             if before.structure and current.structure else None)
    reasons = _growth(current, before, limits) + _structure_reasons(found, policy.structure)
    time = stats.compare_times(current.total, before.total, limits.alpha)
    slower = (time.ratio > 1 + limits.time and time.significant and time.delta > limits.floor)
    if slower and comparable:
        reasons.insert(0, f"time +{100 * (time.ratio - 1):.1f} % "
                          f"({before.median_s:.3f} s -> {current.median_s:.3f} s)")
    faster = (time.ratio < 1 / (1 + limits.time) and -time.delta > limits.floor
              and stats.compare_times(before.total, current.total, limits.alpha).significant)
    latency = _inference(current, before, policy.inference, limits.alpha)
    if comparable and latency.regression:
        reasons.insert(0, latency.regression)
    faster = faster or latency.faster
    measured = Verdict(name, Outcome.UNCHANGED, baseline_s=before.median_s,
                       current_s=current.median_s, time=time, structure=found, timed=comparable,
                       inference=latency.comparison if comparable else None,
                       moved=latency.moved if comparable else ())
    if reasons:
        allow = policy.allow
        if allow is not None and allow.until >= today:
            return replace(measured, verdict=Outcome.ACCEPTED, reasons=tuple(reasons),
                           accepted=allow.reason)
        return replace(measured, verdict=Outcome.REGRESSED, reasons=tuple(reasons))
    if not comparable:
        return replace(measured, verdict=Outcome.NOT_COMPARABLE,
                       reasons=("environment differs from the baseline's",))
    return replace(measured, verdict=Outcome.IMPROVED if faster else Outcome.UNCHANGED)


class _Latency(NamedTuple):
    comparison: stats.TimeComparison | None = None
    moved: tuple[ModuleDelta, ...] = ()  # the modules that moved most, when it moved
    regression: str | None = None  # the reason, when slower
    faster: bool = False


def _inference(current: Measured, before: Measured, policy: InferencePolicy | None,
               alpha: float) -> _Latency:
    """Latency against the baseline's. Profiles taken with other settings (runs, threads,
    optimization) are not compared."""
    now, was = current.inference, before.inference
    if policy is None or now is None or was is None or now.settings != was.settings:
        return _Latency()
    # Samples are means of blocks of runs (stats.block_means says why).
    after, prior = stats.block_means(now.latency_ms), stats.block_means(was.latency_ms)
    latency = stats.compare_times(after, prior, alpha)
    if (latency.ratio > 1 + policy.threshold and latency.significant
            and latency.delta > policy.floor_ms):
        return _Latency(latency, tuple(module_deltas(was, now)),
                        f"inference +{100 * (latency.ratio - 1):.1f} % "
                        f"({median(prior):.3f} ms -> {median(after):.3f} ms a run)")
    if (latency.ratio < 1 / (1 + policy.threshold) and -latency.delta > policy.floor_ms
            and stats.compare_times(prior, after, alpha).significant):
        return _Latency(latency, tuple(module_deltas(was, now)), faster=True)
    return _Latency(latency)


def _structure_reasons(found: StructureDiff | None, policy: StructurePolicy) -> list[str]:
    if found is None:
        return []
    reasons = []
    if found.signature and policy.signature == "fail":
        more = f" (and {len(found.signature) - 2} more)" if len(found.signature) > 2 else ""
        reasons.append("signature: " + "; ".join(found.signature[:2]) + more)
    if (found.modules or found.graph_changed) and policy.graph == "fail":
        reasons.append(f"graph: {len(found.modules)} module change(s); {found.graph}")
    return reasons


def _health(record: Measured) -> list[str]:
    problems = []
    if not record.schema_valid:
        problems.append("sidecar does not validate against its schema")
    if record.validation.checker is False:
        problems.append("onnx.checker failed")
    parity = record.validation.parity
    if parity and not parity.passed:
        problems.append(f"onnxruntime differs from PyTorch by {parity.max_abs_diff:.3g}")
    return problems


def _growth(current: Measured, baseline: Measured, limits: Thresholds) -> list[str]:
    reasons = []
    now, before = current.statistics, baseline.statistics
    if now.unattributed > before.unattributed:
        reasons.append(f"unattributed nodes {before.unattributed} -> {now.unattributed}")
    if now.nodes > before.nodes * (1 + limits.nodes):
        reasons.append(f"nodes {before.nodes} -> {now.nodes}")
    if current.onnx_bytes > baseline.onnx_bytes * (1 + limits.size):
        reasons.append(f"ONNX size {baseline.onnx_bytes} -> {current.onnx_bytes} bytes")
    return reasons


def compare(results: Results, baseline: Results | None, policies: dict[str, Policy],
            today: datetime.date, comparable: bool) -> list[Verdict]:
    """A verdict for every model in the results or the baseline, in a stable order."""
    base_models = baseline.models if baseline else {}
    names = list(results.models) + [n for n in base_models if n not in results.models]
    return [
        compare_model(name, results.models.get(name), base_models.get(name),
                      policies.get(name, Policy()), today, comparable)
        for name in names
    ]


def failed(verdicts: list[Verdict]) -> bool:
    return any(v.verdict.fails_build for v in verdicts)
