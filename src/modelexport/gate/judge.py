"""Judging a run: load the baseline, scope it, flag a different environment, and compare.
No torch."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, replace
from pathlib import Path

from modelexport.errors import UsageError
from modelexport.gate import compare, results
from modelexport.gate.manifest import Manifest
from modelexport.gate.records import Measured
from modelexport.gate.results import Results


@dataclass
class Judgement:
    verdicts: list[compare.Verdict]
    results: Results
    baseline: Results | None
    notes: list[str]
    drift: list[str]  # how the baseline's environment differs from this run's
    require_comparison: bool = False  # a run that compared nothing fails

    @property
    def against(self) -> str:
        """What the run was compared with, as reports head their column."""
        return "base" if self.results.base else "baseline"

    @property
    def compared(self) -> bool:
        """Some model was compared with its baseline (timings or graph)."""
        return any(v.compared for v in self.verdicts)

    @property
    def uncompared(self) -> bool:
        """Nothing was compared, where something had to be."""
        return self.require_comparison and not self.compared

    @property
    def failed(self) -> bool:
        return compare.failed(self.verdicts) or self.uncompared


def judge(current: Results, baseline_path: Path | None,
          policies: dict[str, compare.Policy], allow_env_drift: bool,
          scope: set[str] | None = None, today: datetime.date | None = None,
          require_comparison: bool = False) -> Judgement:
    """Verdicts for the models in ``scope`` (default: all); baseline models outside it
    (another shard, another --select) are not "missing". ``require_comparison``: a run that
    compared nothing (no baseline, or one from elsewhere and no graph to diff) fails.
    Results that hold their base (measured beside them) are compared with it, paired, and
    the stored baseline is not read."""
    if current.base is not None:
        work = {side: sum(r.work_s for r in models.values() if isinstance(r, Measured))
                for side, models in (("head", current.models), ("base", current.base.models))}
        return Judgement(compare.compare(current, None, policies,
                                         today or datetime.date.today(), True), current, None,
                         [f"compared with the base ({current.base.label}), measured beside "
                          f"the head in this run, in pairs (measured work: head "
                          f"{work['head']:.1f} s, base {work['base']:.1f} s)"], [],
                         require_comparison)
    notes: list[str] = []
    baseline = None
    if baseline_path is not None and baseline_path.is_file():
        baseline = results.load(baseline_path, kind="baseline")
        if scope is not None:
            baseline = replace(baseline, models={n: r for n, r in baseline.models.items()
                                                 if n in scope})
    elif baseline_path is not None and baseline_path.exists():
        raise UsageError(f"{baseline_path}: not a file (a baseline is a JSON file)")
    elif baseline_path is not None:
        notes.append(f"no baseline at {baseline_path}: every model is new")
    comparable = True
    drift = current.environment.drift(baseline.environment) if baseline else []
    if drift:
        notes.append("environment differs from the baseline's: " + "; ".join(drift))
        comparable = allow_env_drift
        if not comparable:
            notes.append("timings are not comparable (pass --allow-env-drift to gate them "
                         "anyway); the graph's structure still is")
    verdicts = compare.compare(current, baseline, policies, today or datetime.date.today(),
                               comparable)
    return Judgement(verdicts, current, baseline, notes, drift, require_comparison)


def policies(manifest: Manifest | None) -> dict[str, compare.Policy]:
    if manifest is None:
        return {}
    return {m.name: compare.Policy(m.thresholds, m.allow_regression, m.structure, m.inference)
            for m in manifest.models}
