"""Rendering verdicts: terminal, markdown and JSON reports. Pure, no torch."""

from __future__ import annotations

import json
from dataclasses import replace

from modelexport import diff, schemas
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
    assert report.outputs(new, "r.json", {"report-path": ""}, failed=True) == {
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
    assert data[0]["moved"][0] == {
        "module": "encoder.layer.{0..11}.intermediate.dense", "baseline_ms": 24.0,
        "current_ms": 96.0, "modules": 12}
    assert data[1]["moved"] == []
    # Measured beside the pull request's base: the columns say so.
    paired = replace(results, base=Base("abc1234", "0" * 64, dict(results.models)))
    markdown = report.markdown([slower, steady], paired, None, [], "hint")
    assert ("| | model | metric | base | head | change of pairs (95 %) | p | gate | why |"
            in markdown)
    assert "| module (own time) | base ms | head ms | Δ ms |" in markdown
    header = report.terminal([steady], [], "base").splitlines()[0].split()
    assert header[:5] == ["model", "verdict", "metric", "base", "head"]
    assert json.loads(report.as_json([steady], [], "abc1234"))["compared_with"] == {
        "kind": "base", "label": "abc1234"}


def _cells(text: str) -> list[list[str]]:
    """The terminal table's rows, split on the two-space gaps between its columns."""
    return [[cell.strip() for cell in line.split("  ") if cell.strip()]
            for line in text.split("\n\n")[0].splitlines()]


def test_every_gated_metric_has_its_own_cells_and_the_why_names_the_one_that_decided() -> None:
    # Export time steady, inference faster: the verdict says which metric improved.
    faster = Verdict("minilm", Outcome.IMPROVED,
                     ("inference -9.5 % (2.100 ms -> 1.900 ms)",), 1.234, 1.19,
                     changes=(Change("export time", "s", 1.234, 1.19, 0.964, 0.155, "same"),
                              Change("inference", "ms", 2.1, 1.9, 0.905, 0.002, "better")),
                     timed=True)
    # Paired: the change is the pairs' median ratio with its interval.
    slower = Verdict("smallcnn", Outcome.REGRESSED,
                     ("inference +28.0 % (95 %: +20.0..+31.0 %; 0.100 ms -> 0.128 ms, paired)",
                      "ONNX size 100.9 KB -> 175.6 KB"), 0.5, 0.49,
                     changes=(Change("export time", "s", 0.5, 0.49, 0.98, 0.7, "same", True,
                                     (0.95, 1.01)),
                              Change("inference", "ms", 0.1, 0.128, 1.28, 0.001, "worse", True,
                                     (1.2, 1.31))),
                     timed=True)
    elsewhere = Verdict("bert", Outcome.NOT_COMPARABLE,
                        ("environment differs from the baseline's",), 2.0, 3.0,
                        changes=(Change("export time", "s", 2.0, 3.0, 1.5, 0.001, "worse"),))
    new = Verdict("vit", Outcome.NEW, ("no baseline yet",), current_s=0.75)
    rows = _cells(report.terminal([faster, slower, elsewhere, new], []))
    assert rows[0] == ["model", "verdict", "metric", "baseline", "current", "change", "p",
                       "gate", "why"]
    assert rows[1] == ["minilm", "improved", "export time", "1.234 s", "1.190 s", "-3.6 %",
                       "0.155", "same", "inference -9.5 % (2.100 ms -> 1.900 ms)"]
    assert rows[2] == ["inference", "2.100 ms", "1.900 ms", "-9.5 %", "0.002", "better"]
    assert rows[3][:8] == ["smallcnn", "regressed", "export time", "0.500 s", "0.490 s",
                           "-2.0 % (-5.0..+1.0)", "0.7", "same"]
    assert rows[4] == ["inference", "0.100 ms", "0.128 ms", "+28.0 % (+20.0..+31.0)", "0.001",
                       "worse"]
    assert rows[5][-2:] == ["not gated", "environment differs from the baseline's"]
    assert rows[6] == ["vit", "new", "export time", "-", "0.750 s", "-", "-", "-",
                       "no baseline yet"]
    results = results_of({n: measured(STEADY) for n in ("minilm", "smallcnn", "bert", "vit")})
    markdown = report.markdown([faster, slower, elsewhere, new], results, None, [], "hint")
    assert ("| 🟢 | `minilm` | export time | 1.234 s | 1.190 s | -3.6 % | 0.155 | same | "
            "`inference -9.5 % (2.100 ms -> 1.900 ms)` |") in markdown
    assert "| | | inference | 2.100 ms | 1.900 ms | -9.5 % | 0.002 | better |  |" in markdown
    assert "| | | inference | 0.100 ms | 0.128 ms | +28.0 % (+20.0..+31.0) | 0.001 | worse |" \
        in markdown
    document = json.loads(report.as_json([faster, slower, elsewhere, new], []))
    assert schemas.schema_errors(document, schemas.REPORT) == []
    cnn = document["models"][1]
    assert cnn["metrics"][1] == {
        "name": "inference", "unit": "ms", "baseline": 0.1, "current": 0.128, "ratio": 1.28,
        "interval": [1.2, 1.31], "p_value": 0.001, "direction": "worse", "paired": True}


def test_where_inference_memory_moved_shows_beside_its_row() -> None:
    grown = (ModuleDelta("encoder.layer.{0..11}.intermediate", 4.0, 16.0, 12),)
    bigger = Verdict("bert", Outcome.REGRESSED, ("inference memory +30.0 %",), changes=(
        Change("inference memory", "MB", 40.0, 52.0, 1.3, None, "worse"),), grown=grown,
        timed=True)
    text = report.terminal([bigger], [])
    assert "inference memory  40.0 MB   52.0 MB  +30.0 %" in text
    assert ("bert: inference memory +30.0 %; where activations moved (MB a run):\n"
            "  encoder.layer.{0..11}.intermediate  4.000 -> 16.000 (+12.000)") in text
    markdown = report.markdown([bigger], results_of({"bert": measured(STEADY)}), None, [], "h")
    assert "<details><summary>Inference memory: where it moved: bert</summary>" in markdown
    document = json.loads(report.as_json([bigger], []))
    assert schemas.schema_errors(document, schemas.REPORT) == []
