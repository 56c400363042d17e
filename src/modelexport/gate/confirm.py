"""A timing regression found against the stored baseline, confirmed (or not) by measuring
the pull request's base beside the head. Pure.

A stored baseline was measured at another time, under another load: a slowdown it shows
may be that load. Before such a verdict fails the build, the models it names are measured
again beside the base, in pairs; a timing regression the pairs do not show is reported as
"not confirmed", with both figures, and no longer fails the model.
"""

from __future__ import annotations

from dataclasses import replace

from modelexport.gate.compare import Outcome, Verdict


def suspects(verdicts: list[Verdict]) -> list[str]:
    """The models that regressed on a timing against the stored baseline."""
    return [v.name for v in verdicts if v.outcome == Outcome.REGRESSED
            and any(c.direction == "worse" for c in v.changes)]


def confirm(verdicts: list[Verdict], paired: list[Verdict], label: str) -> list[Verdict]:
    """``verdicts`` (against the stored baseline) with each timing regression kept where
    ``paired`` (the same models beside the base ``label``) shows it too, and reported as
    not confirmed where it does not. A model whose confirmation failed keeps its verdict,
    and says so."""
    beside = {v.name: v for v in paired}
    return [_confirmed(v, beside.get(v.name), label) if v.name in suspects(verdicts) else v
            for v in verdicts]


def _confirmed(verdict: Verdict, paired: Verdict | None, label: str) -> Verdict:
    if paired is None or not paired.timed:
        why = paired.reasons[0] if paired and paired.reasons else "nothing to compare"
        return replace(verdict, reasons=(*verdict.reasons,
                                         f"not re-measured beside the base: {why}"))
    reasons = list(verdict.reasons)
    for change in verdict.changes:
        again = paired.change(change.name)
        if change.direction != "worse" or again is None or again.direction == "worse":
            continue
        reasons.remove(change.reason())
        reasons.append(f"not confirmed: {change.reason()} against the stored baseline; "
                       f"beside the base ({label}): {again.reason()}")
    if any(not r.startswith("not confirmed: ") for r in reasons):
        return replace(verdict, reasons=tuple(reasons))
    return replace(verdict, outcome=Outcome.UNCHANGED, reasons=tuple(reasons))
