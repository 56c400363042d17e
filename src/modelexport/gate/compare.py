"""Verdicts: current results against the baseline, per model. Pure functions, no torch.

Every timed metric (export time; inference latency where the manifest profiles it) is
judged by ``metric.judge``, the one regression rule; on pairs of samples where the baseline
is the pull request's base measured beside the head (``paired``). Other gates: a failed export, an
invalid sidecar, a failed checker or parity check, more unattributed nodes, a node count or
file size grown beyond its threshold, a changed graph where the policy says so (by default
a changed input or output signature). Timings compare only within one environment; the
structure is deterministic, so its gates hold across machines too.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from modelexport import diff
from modelexport.diff import StructureDiff
from modelexport.gate import metric
from modelexport.gate.latency import (
    INFERENCE_MEMORY,
    LATENCY,
    ModuleDelta,
    memory_deltas,
    module_deltas,
)
from modelexport.gate.manifest import (
    AllowRegression,
    InferencePolicy,
    StructurePolicy,
    Thresholds,
)
from modelexport.gate.metric import Change, Metric, Rule
from modelexport.gate.records import Failed, Measured, ModelResult
from modelexport.gate.results import Results


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
    outcome: Outcome
    reasons: tuple[str, ...] = ()
    baseline_s: float | None = None  # median gated seconds
    current_s: float | None = None
    changes: tuple[Change, ...] = ()  # every metric compared with its baseline's
    accepted: str | None = None  # the reason given in the manifest
    structure: StructureDiff | None = None  # None: not compared (a side lacks a summary)
    timed: bool = False  # the metrics decided (same environment); shown either way
    moved: tuple[ModuleDelta, ...] = ()  # where inference time moved, when it did
    grown: tuple[ModuleDelta, ...] = ()  # where activation memory moved (MB), when it did

    @property
    def compared(self) -> bool:
        """Something of this model was compared with its baseline."""
        return self.timed or self.structure is not None

    def change(self, metric: str) -> Change | None:
        return next((c for c in self.changes if c.name == metric), None)

    @property
    def inference(self) -> Change | None:
        """The latency's change, where it decided (same environment and settings)."""
        return self.change(LATENCY) if self.timed else None

    def to_json(self) -> dict[str, Any]:
        """One model of the JSON report (``schemas/report.schema.json``)."""
        return {
            "name": self.name, "verdict": self.outcome.value,
            "reasons": [r[:200] for r in self.reasons],
            "baseline_s": self.baseline_s, "current_s": self.current_s,
            "accepted": self.accepted, "compared": self.compared, "gated": self.timed,
            "metrics": [c.to_json() for c in self.changes],
            "structure": self.structure.to_json() if self.structure else None,
            "moved": [{"module": row.where, "baseline_ms": row.before,
                       "current_ms": row.after, "modules": row.count}
                      for row in self.moved],
            "grown": [{"module": row.where, "baseline_mb": row.before,
                       "current_mb": row.after, "modules": row.count}
                      for row in self.grown],
        }


def compare_model(name: str, current: ModelResult | None, baseline: ModelResult | None,
                  policy: Policy, today: datetime.date, comparable: bool,
                  paired: bool = False) -> Verdict:
    """``paired``: ``baseline`` is the pull request's base, measured beside ``current``."""
    before = baseline if isinstance(baseline, Measured) else None
    before_s = before.median_s if before else None
    if current is None:
        return Verdict(name, Outcome.MISSING, (MISSING[paired],), baseline_s=before_s)
    if isinstance(current, Failed):
        return Verdict(name, Outcome.FAILED, (current.error,), baseline_s=before_s)
    problems = _health(current)
    if paired and isinstance(baseline, Failed):
        # Nothing to compare the head with: said as loudly as the head's own failure.
        problems.append(f"base: {baseline.error}")
    if problems:
        return Verdict(name, Outcome.FAILED, tuple(problems), baseline_s=before_s,
                       current_s=current.median_s)
    if before is None:
        return Verdict(name, Outcome.NEW, (NEW[paired],), current_s=current.median_s)
    return _against_baseline(name, current, before, policy, today, comparable, paired)


MISSING = {False: "in the baseline, not in this run",
           True: "in the base's manifest, not in the head's"}
NEW = {False: "no baseline yet", True: "not in the base's manifest"}


def _against_baseline(name: str, current: Measured, before: Measured, policy: Policy,
                      today: datetime.date, comparable: bool, paired: bool) -> Verdict:
    found = (diff.diff(before.structure, current.structure)
             if before.structure and current.structure else None)
    changes = tuple(metric.judge(now, was, rule, paired) for now, was, rule
                    in _metrics(current, before, policy, paired))
    worse = [c.reason() for c in changes if c.direction == "worse"] if comparable else []
    reasons = worse + _growth(current, before, policy.thresholds) \
        + _structure_reasons(found, policy.structure)
    moved = _moved(current, before) if comparable and _latency_moved(changes) else ()
    grown = (tuple(memory_deltas(before.inference, current.inference))
             if comparable and before.inference and current.inference
             and _changed(changes, INFERENCE_MEMORY) else ())
    measured = Verdict(name, Outcome.UNCHANGED, baseline_s=before.median_s,
                       current_s=current.median_s, changes=changes, structure=found,
                       timed=comparable, moved=moved, grown=grown)
    if reasons:
        allow = policy.allow
        if allow is not None and allow.until >= today:
            return replace(measured, outcome=Outcome.ACCEPTED, reasons=tuple(reasons),
                           accepted=allow.reason)
        return replace(measured, outcome=Outcome.REGRESSED, reasons=tuple(reasons))
    if not comparable:
        return replace(measured, outcome=Outcome.NOT_COMPARABLE,
                       reasons=("environment differs from the baseline's",))
    faster = tuple(c.reason() for c in changes if c.direction == "better")
    return replace(measured, outcome=Outcome.IMPROVED if faster else Outcome.UNCHANGED,
                   reasons=faster)


def _metrics(current: Measured, before: Measured, policy: Policy, paired: bool
             ) -> list[tuple[Metric, Metric, Rule]]:
    """Each metric this model is gated on: this run's, the baseline's, and the rule (the
    export's memory where both sides measured it; a decoder's first token under the
    latency's rule; the arena's peak where the manifest asks for it). Latencies profiled
    with other settings (runs, threads, optimization) are not compared; measured in pairs,
    every run counts (``Latency.runs``), else the means of blocks."""
    limits = policy.thresholds
    found = [(current.export_time, before.export_time, limits.rule)]
    if current.export_memory and before.export_memory:
        found.append((current.export_memory, before.export_memory, limits.memory_rule))
    inference = policy.inference
    for now, was in ((current.inference, before.inference),
                     (current.first_token, before.first_token)):
        if inference and now and was and now.settings == was.settings:
            found.append((now.runs, was.runs, inference.rule(limits.alpha)) if paired
                         else (now.metric, was.metric, inference.rule(limits.alpha)))
    now, was = current.inference, before.inference
    if (inference and inference.memory and now and was and now.memory and was.memory
            and now.settings == was.settings):
        found.append((now.memory, was.memory, inference.memory_rule(limits.alpha)))
    return found


def _latency_moved(changes: tuple[Change, ...]) -> bool:
    return _changed(changes, LATENCY)


def _changed(changes: tuple[Change, ...], metric: str) -> bool:
    return any(c.name == metric and c.direction != "same" for c in changes)


def _moved(current: Measured, before: Measured) -> tuple[ModuleDelta, ...]:
    """Where the latency moved, module by module."""
    assert current.inference is not None and before.inference is not None
    return tuple(module_deltas(before.inference, current.inference))


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
        reasons.append(f"ONNX size {diff.sizes(baseline.onnx_bytes, current.onnx_bytes)}")
    return reasons


def compare(results: Results, baseline: Results | None, policies: dict[str, Policy],
            today: datetime.date, comparable: bool) -> list[Verdict]:
    """A verdict for every model in the results or the baseline, in a stable order. Where
    the results hold their base, measured beside them, that is what they are compared with
    (paired), and ``baseline`` is not consulted."""
    paired = results.base is not None
    base_models: dict[str, ModelResult] = (
        results.base.models if results.base else baseline.models if baseline else {})
    unmatched = results.base.unmatched if results.base else ()
    names = [*results.models, *(n for n in [*base_models, *unmatched]
                                if n not in results.models)]
    return [
        compare_model(name, results.models.get(name), base_models.get(name),
                      policies.get(name, Policy()), today, comparable or paired, paired)
        for name in dict.fromkeys(names)
    ]


def failed(verdicts: list[Verdict]) -> bool:
    return any(v.outcome.fails_build for v in verdicts)
