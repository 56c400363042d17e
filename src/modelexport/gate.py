"""The gate: measure a manifest's models, judge them against the baseline. No torch here;
the models are exported in worker processes."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelexport import compare, results
from modelexport.manifest import Manifest, ModelSpec

if TYPE_CHECKING:
    from modelexport.runner import Progress


@dataclass
class Judgement:
    verdicts: list[compare.Verdict]
    results: dict[str, Any]
    baseline: dict[str, Any] | None
    notes: list[str]

    @property
    def failed(self) -> bool:
        return compare.failed(self.verdicts)


def measure(manifest: Manifest, specs: list[ModelSpec], results_path: Path,
            progress: Callable[[Progress], None], context: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    """Run every model; the results file is rewritten after each one, so an interrupted
    run keeps what finished. ``context`` (shard, pull_request) is recorded where set."""
    from modelexport import runner

    document = results.new(manifest)
    document.update({k: v for k, v in (context or {}).items() if v is not None})
    results.write(results_path, document)
    for spec, record in runner.run(specs, progress):
        document["models"][spec.name] = record
        results.write(results_path, document)
    return document


def judge(current: dict[str, Any], baseline_path: Path | None,
          policies: dict[str, compare.Policy], allow_env_drift: bool,
          scope: set[str] | None = None, today: datetime.date | None = None) -> Judgement:
    """Verdicts for the models in ``scope`` (default: all); baseline models outside it
    (another shard, another --select) are not "missing"."""
    notes: list[str] = []
    baseline = None
    if baseline_path is not None and baseline_path.is_file():
        baseline = results.load(baseline_path, kind="baseline")
        if scope is not None:
            baseline = {**baseline, "models": {n: r for n, r in baseline["models"].items()
                                               if n in scope}}
    elif baseline_path is not None:
        notes.append(f"no baseline at {baseline_path}: every model is new")
    comparable = True
    if baseline is not None:
        drift = results.environment_drift(current, baseline)
        if drift:
            notes.append("environment differs from the baseline's: " + "; ".join(drift))
            comparable = allow_env_drift
            if not comparable:
                notes.append("timings are not comparable (pass --allow-env-drift to gate "
                             "them anyway)")
    verdicts = compare.compare(current, baseline, policies, today or datetime.date.today(),
                               comparable)
    return Judgement(verdicts, current, baseline, notes)


def policies(manifest: Manifest | None) -> dict[str, compare.Policy]:
    if manifest is None:
        return {}
    return {m.name: compare.Policy(m.thresholds, m.allow_regression) for m in manifest.models}
