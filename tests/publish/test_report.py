"""Rendering verdicts: terminal, markdown and JSON reports. Pure, no torch."""

from __future__ import annotations

import json
from dataclasses import replace

from modelexport import diff
from modelexport.gate.compare import Outcome, Verdict
from modelexport.gate.latency import ModuleDelta
from modelexport.gate.metric import Change
from modelexport.gate.results import Base
from modelexport.publish import report

from harness import LINEAR, SDPA, measured, results_of, toy_structure

STEADY = [1.00, 1.02, 0.99, 1.01, 1.03]


def test_markdown_report_for_100_models_stays_under_60_kb_and_says_so() -> None:
    results = results_of({f"model-{i:03d}": measured(STEADY) for i in range(100)})
    verdicts = [Verdict(name, Outcome.REGRESSED, ("x" * 700,), 1.0, 1.2)
                for name in results.models]
    text = report.markdown(verdicts, results, None, [], "update hint")
    assert len(text.encode()) <= report.LIMIT
    assert "_Truncated:" in text
    three = results_of({f"model-{i:03d}": measured(STEADY, peak_rss_bytes=1_523_000_000)
                        for i in range(3)})
    small = report.markdown(verdicts[:3], three, None, ["a note"], "update hint")
    assert "| `model-000` | 1.00 |" in small and " | 1,523 MB |" in small
    assert "_Truncated:" not in small and "<details><summary>Environment" in small
    assert "> `a note`" in small
    assert len(report.as_json(verdicts, []).encode()) < 60_000


def test_a_run_that_compared_nothing_says_so_on_its_last_line_and_in_every_report() -> None:
    results = results_of({"a": measured(STEADY), "b": measured(STEADY)})
    new = [Verdict(name, Outcome.NEW, ("no baseline yet",)) for name in results.models]
    last = report.terminal(new, []).splitlines()[-1]
    assert last.startswith("modelexport: 2 new; NOTHING WAS COMPARED")
    assert "NOTHING WAS COMPARED" in report.markdown(new, results, None, [], "hint")
    assert report.outputs(new, "r.json", "", failed=True) == {
        "verdict": "fail", "regressions": "0", "compared": "0", "results-path": "r.json",
        "report-path": ""}
    compared = [*new[:1], Verdict("b", Outcome.UNCHANGED, timed=True)]
    assert report.terminal(compared, []).splitlines()[-1] == "modelexport: 1 new, 1 unchanged"


def test_graph_changes_show_under_the_verdicts_folded_and_collapsed() -> None:
    found = diff.diff(toy_structure(12), toy_structure(12, attention=SDPA))
    results = results_of({"bert": measured(STEADY)})
    verdicts = [Verdict("bert", Outcome.UNCHANGED, structure=found, timed=True)]
    text = report.terminal(verdicts, [])
    assert "bert: graph changed\n  encoder.layer.{0..11}.attention.self  MatMul 2 -> 0" in text
    markdown = report.markdown(verdicts, results, None, [], "hint", ["python: 3.11 -> 3.12"])
    table_end = markdown.index("| ⚪ | `bert` |")
    section = markdown.index("<details><summary>Graph changes: bert</summary>")
    assert table_end < section < markdown.index("Per-phase medians")
    assert "another environment (`python: 3.11 -> 3.12`)" in markdown
    assert "| `encoder.layer.{0..11}.attention.self` | `MatMul 2 -> 0" in markdown
    assert '"where": "encoder.layer.{0..11}.attention.self"' in report.as_json(verdicts, [])


def test_graph_changes_of_100_models_stay_within_the_comment_limit() -> None:
    found = diff.diff(toy_structure(12), toy_structure(
        12, **{f"head.{i}.{j}": LINEAR for i in range(40) for j in range(i + 1)}))
    results = results_of({f"model-{i:03d}": measured(STEADY) for i in range(100)})
    verdicts = [Verdict(name, Outcome.REGRESSED, ("graph: changed",), structure=found)
                for name in results.models]
    assert len(report.markdown(verdicts, results, None, [], "hint").encode()) <= report.LIMIT


def test_where_inference_moved_shows_for_the_models_whose_latency_moved() -> None:
    moved = (ModuleDelta("encoder.layer.{0..11}.intermediate.dense", 24.0, 96.0, 12),
             ModuleDelta("encoder.layer.{0..11}.output.`dense|x`", 24.0, 90.0, 12))
    slower = Verdict("bert", Outcome.REGRESSED, ("inference +180.0 % (50.0 ms -> 140.0 ms)",),
                     changes=(Change("inference", "ms", 50.0, 140.0, 2.8, 0.0001, "worse"),),
                     moved=moved, timed=True)
    steady = Verdict("vit", Outcome.UNCHANGED,
                     changes=(Change("inference", "ms", 50.0, 50.0, 1.0, 0.5, "same"),),
                     timed=True)
    text = report.terminal([slower, steady], [])
    assert ("bert: inference +180.0 %; where it moved (own ms of a typical run):\n"
            "  encoder.layer.{0..11}.intermediate.dense  24.000 -> 96.000 (+72.000)") in text
    assert "vit: inference" not in text
    results = results_of({"bert": measured(STEADY), "vit": measured(STEADY)})
    markdown = report.markdown([slower, steady], results, None, [], "hint")
    assert "<details><summary>Inference: where it moved: bert</summary>" in markdown
    # A module name from the model cannot break the table or the code span.
    assert "| `encoder.layer.{0..11}.output.'dense\\|x'` | 24.000 | 90.000 | +66.000 |" in markdown
    data = json.loads(report.as_json([slower, steady], []))["models"]
    assert data[0]["inference"]["moved"][0] == {
        "module": "encoder.layer.{0..11}.intermediate.dense", "baseline_ms": 24.0,
        "current_ms": 96.0, "modules": 12}
    assert data[1]["inference"] == {"ratio": 1.0, "p_value": 0.5, "moved": []}
    # Measured beside the pull request's base: the columns say so.
    paired = replace(results, base=Base("abc1234", "0" * 64, dict(results.models)))
    markdown = report.markdown([slower, steady], paired, None, [], "hint")
    assert "| | model | base | head | Δ median pair | p | why |" in markdown
    assert "| module (own time) | base ms | head ms | Δ ms |" in markdown
    assert report.terminal([steady], [], "base").startswith("model  verdict    base  head")
    assert "Δ median pair" in report.terminal([steady], [], "base").splitlines()[0]
    assert json.loads(report.as_json([steady], [], "abc1234"))["compared_with"] == {
        "kind": "base", "label": "abc1234"}
