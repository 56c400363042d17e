"""Rendering verdicts: terminal, markdown and JSON reports. Pure, no torch."""

from __future__ import annotations

from modelexport.gate.compare import Outcome, Verdict
from modelexport.publish import report

from harness import measured, results_of

STEADY = [1.00, 1.02, 0.99, 1.01, 1.03]


def test_markdown_report_for_100_models_stays_under_60_kb_and_says_so() -> None:
    results = results_of({f"model-{i:03d}": measured(STEADY) for i in range(100)})
    verdicts = [Verdict(name, Outcome.REGRESSED, ("x" * 700,), 1.0, 1.2)
                for name in results.models]
    text = report.markdown(verdicts, results, None, [], "update hint")
    assert len(text.encode()) <= report.LIMIT
    assert "_Truncated:" in text
    three = results_of({f"model-{i:03d}": measured(STEADY) for i in range(3)})
    small = report.markdown(verdicts[:3], three, None, ["a note"], "update hint")
    assert "_Truncated:" not in small and "<details><summary>Environment" in small
    assert "> a note" in small
    assert len(report.as_json(verdicts, []).encode()) < 60_000
