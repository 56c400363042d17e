"""A timing regression against the stored baseline, confirmed or not beside the base.
Pure: verdicts made from chosen samples."""

from __future__ import annotations

import datetime
from dataclasses import replace

from modelexport.gate import compare, confirm
from modelexport.gate.compare import Outcome, Policy
from modelexport.gate.manifest import Thresholds
from modelexport.gate.results import Base

from harness import measured, results_of

TODAY = datetime.date(2026, 12, 6)
POLICY = Policy(Thresholds(floor=0.0))
STEADY = [1.00, 1.02, 0.99, 1.01, 1.03, 1.00]


def against_baseline(**models: tuple[list[float], list[float]]) -> list[compare.Verdict]:
    current = results_of({name: measured(now) for name, (now, _) in models.items()})
    stored = results_of({name: measured(was) for name, (_, was) in models.items()},
                        "baseline")
    return compare.compare(current, stored, dict.fromkeys(models, POLICY), TODAY, True)


def beside_base(**models: tuple[list[float], list[float]]) -> list[compare.Verdict]:
    head = results_of({name: measured(now) for name, (now, _) in models.items()})
    base = Base("abc1234", "0" * 64, {name: measured(was) for name, (_, was) in models.items()})
    return compare.compare(replace(head, base=base), None, dict.fromkeys(models, POLICY),
                           TODAY, True)


def test_a_slowdown_from_the_baselines_load_is_not_confirmed_and_passes() -> None:
    quiet = [s * 0.8 for s in STEADY]  # the baseline was taken on a quieter machine
    verdicts = against_baseline(m=(STEADY, quiet), other=(STEADY, STEADY))
    assert [v.outcome for v in verdicts] == [Outcome.REGRESSED, Outcome.UNCHANGED]
    assert confirm.suspects(verdicts) == ["m"]
    paired = beside_base(m=(STEADY, [s * 1.001 for s in STEADY]))
    m, other = confirm.confirm(verdicts, paired, "abc1234")
    assert m.outcome == Outcome.UNCHANGED
    (reason,) = m.reasons
    assert reason == ("not confirmed: export time +25.0 % (0.804 s -> 1.005 s) against the "
                      "stored baseline; beside the base (abc1234): export time -0.1 % (95 %: "
                      "-0.1..-0.1 %; 1.006 s -> 1.005 s, paired)")
    assert other == verdicts[1]


def test_a_real_slowdown_is_confirmed_and_other_reasons_still_fail() -> None:
    verdicts = against_baseline(m=([s * 1.3 for s in STEADY], STEADY))
    paired = beside_base(m=([s * 1.3 for s in STEADY], STEADY))
    assert confirm.confirm(verdicts, paired, "abc1234") == verdicts
    bigger = replace(verdicts[0], reasons=(*verdicts[0].reasons, "nodes 100 -> 120"))
    (kept,) = confirm.confirm([bigger], beside_base(m=(STEADY, STEADY)), "abc1234")
    assert kept.outcome == Outcome.REGRESSED
    assert kept.reasons[0] == "nodes 100 -> 120"
    assert kept.reasons[1].startswith("not confirmed: export time +30.0 %")


def test_a_confirmation_that_could_not_measure_keeps_the_verdict_and_says_so() -> None:
    verdicts = against_baseline(m=([s * 1.3 for s in STEADY], STEADY))
    failed = [replace(v, outcome=Outcome.FAILED, reasons=("base: ImportError: x",),
                      timed=False) for v in beside_base(m=(STEADY, STEADY))]
    (kept,) = confirm.confirm(verdicts, failed, "abc1234")
    assert kept.outcome == Outcome.REGRESSED
    assert kept.reasons[-1] == "not re-measured beside the base: base: ImportError: x"
