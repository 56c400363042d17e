"""Render verdicts: terminal table, markdown (PR comment / step summary), JSON. Pure."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from statistics import median

from modelexport import diff
from modelexport.escape import block, code, in_html, printable
from modelexport.gate.compare import Outcome, Verdict
from modelexport.gate.latency import INFERENCE_MEMORY, LATENCY, ModuleDelta
from modelexport.gate.metric import Change, amount
from modelexport.gate.records import EXPORT_TIME
from modelexport.gate.results import Results
from modelexport.github.actions import Annotation
from modelexport.htp.options import GATED_PHASES, TOTAL
from modelexport.publish import charts
from modelexport.yamlfile import Problem

EMOJI = {Outcome.REGRESSED: "🔴", Outcome.FAILED: "❌", Outcome.IMPROVED: "🟢",
         Outcome.UNCHANGED: "⚪", Outcome.NEW: "🆕", Outcome.MISSING: "❔",
         Outcome.NOT_COMPARABLE: "⚠️", Outcome.ACCEPTED: "🟡"}
# Failing verdicts are errors; verdicts a reviewer should see but that pass are warnings.
ANNOTATION_KIND = {Outcome.REGRESSED: "error", Outcome.FAILED: "error",
                   Outcome.ACCEPTED: "warning", Outcome.NOT_COMPARABLE: "warning",
                   Outcome.MISSING: "warning"}
LIMIT = 60_000  # bytes; a PR comment holds 65,536 characters
GRAPH_ROWS = 10  # module changes shown per model before "N more"
NOTHING_COMPARED = ("NOTHING WAS COMPARED: no model had a baseline entry measured in this "
                    "environment or a structure to diff; this run gates no slowdown and no "
                    "graph change")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def _change(change: Change) -> str:
    """``+6.1 %``; paired, with the interval of the pairs' ratio: ``+6.1 % (+4.0..+8.3)``."""
    text = f"{100 * (change.ratio - 1):+.1f} %"
    if change.interval:
        low, high = (100 * (end - 1) for end in change.interval)
        text += f" ({low:+.1f}..{high:+.1f})"
    return text


def _p(change: Change) -> str:
    return "n/a" if change.p_value is None else f"{change.p_value:.3g}"


UNGATED = "not gated"  # measured in another environment: the rule decided nothing


def metric_rows(verdict: Verdict) -> list[tuple[str, str, str, str, str, str]]:
    """The verdict's cells, one row per gated metric: (metric, before, after, change, p,
    gate: what the rule made of it, worse, better or the same). A model with no metric
    compared (new, missing, failed) has one row of its export time, as far as it was
    measured."""
    rows = [(c.name, amount(c.before, c.unit), amount(c.after, c.unit), _change(c), _p(c),
             c.direction if verdict.timed else UNGATED) for c in verdict.changes]
    return rows or [(EXPORT_TIME, _seconds(verdict.baseline_s), _seconds(verdict.current_s),
                     "-", "-", "-")]


def _why(verdict: Verdict) -> str:
    text = "; ".join(verdict.reasons)
    return f"{text} (accepted: {verdict.accepted})" if verdict.accepted else text


def summary(verdicts: list[Verdict]) -> str:
    """The verdict counts; said loudly when not one model was compared with a baseline."""
    counts = Counter(v.outcome.value for v in verdicts)
    text = ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "no models"
    return text if any(v.compared for v in verdicts) else f"{text}; {NOTHING_COMPARED}"


def changed_graphs(verdicts: list[Verdict]) -> list[Verdict]:
    """The verdicts whose model's graph differs from its baseline's."""
    return [v for v in verdicts if v.structure is not None and not v.structure.identical]


def moved_inference(verdicts: list[Verdict]) -> list[Verdict]:
    """The verdicts whose model's inference time moved, with the modules that moved most."""
    return [v for v in verdicts if v.moved and v.inference is not None]


def _moved_by(verdict: Verdict, metric: str) -> str:
    """``inference +45.9 %``: how far a metric of the verdict moved."""
    change = verdict.change(metric)
    assert change is not None
    return f"{metric} {100 * (change.ratio - 1):+.1f} %"


def grown_memory(verdicts: list[Verdict]) -> list[Verdict]:
    """The verdicts whose inference memory moved, with the modules that moved most."""
    return [v for v in verdicts if v.grown and v.change(INFERENCE_MEMORY) is not None]


NOW = {"baseline": "current", "base": "head"}  # what a run is called beside what it compared with
# Paired, the change is the median of the pairs' ratios (with its 95 % interval), not the
# ratio of the medians.
CHANGE = {"baseline": "change", "base": "change of pairs (95 %)"}


def _header(against: str) -> tuple[str, ...]:
    return ("model", "verdict", "metric", against, NOW[against], CHANGE[against], "p", "gate")


def terminal(verdicts: list[Verdict], notes: list[str], against: str = "baseline") -> str:
    """``against``: what the verdicts compared with ("baseline", or "base" when measured
    beside the pull request's base). One row per metric; the model, its verdict and why on
    the first."""
    rows = [(*_header(against), "why")]
    for v in verdicts:
        for i, cells in enumerate(metric_rows(v)):
            first = i == 0
            rows.append((printable(v.name) if first else "", v.outcome.value if first else "",
                         *cells, printable(_why(v)) if first else ""))
    widths = [max(len(row[i]) for row in rows) for i in range(8)]
    lines = [("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
              + "  " + row[8]).rstrip() for row in rows]
    for verdict in changed_graphs(verdicts):
        assert verdict.structure is not None
        found = diff.as_text(verdict.structure, GRAPH_ROWS)
        lines += ["", f"{printable(verdict.name)}: graph changed",
                  *(f"  {printable(line)}" for line in found.splitlines())]
    for verdict in moved_inference(verdicts):
        lines += ["", f"{printable(verdict.name)}: {_moved_by(verdict, LATENCY)}; where it "
                      "moved (own ms of a typical run):", *_delta_lines(verdict.moved)]
    for verdict in grown_memory(verdicts):
        lines += ["", f"{printable(verdict.name)}: {_moved_by(verdict, INFERENCE_MEMORY)}; "
                      "where activations moved (MB a run):", *_delta_lines(verdict.grown)]
    shown = [printable(note) for note in notes]
    return "\n".join([*lines, "", *shown, f"modelexport: {summary(verdicts)}"]).rstrip() + "\n"


def _delta_lines(rows: tuple[ModuleDelta, ...]) -> list[str]:
    return [f"  {printable(row.where)}  {row.before:.3f} -> {row.after:.3f} ({row.delta:+.3f})"
            for row in rows]


def update_hint(results_path: str, baseline_path: str) -> str:
    """How to make a run the baseline, or accept its slowdown: the report's last section."""
    return (
        "Make this run the baseline (on the default branch):\n\n"
        "```\n" + block(f"modelexport baseline update --results {results_path} --baseline "
                         f"{baseline_path}") +
        "```\n\nWith the GitHub Action: run it with `mode: update-baseline` on the default "
        "branch and commit the baseline file.\n\n"
        "Accept an intended slowdown in the manifest instead:\n\n```yaml\n"
        "allow_regression: {reason: \"why it is slower\", until: 2030-01-31}\n```"
    )


def markdown(verdicts: list[Verdict], results: Results, baseline: Results | None,
             notes: list[str], update_hint: str, drift: list[str] | None = None) -> str:
    """The PR comment and step summary: the verdict table, then collapsed details (the
    graph changes first). ``drift``: how the baseline's environment differs, if it does.
    Every string from a file (names, reasons, paths, versions) is in a code span: it can be
    read, and cannot link, mention, or end a row."""
    head = [f"### modelexport: {summary(verdicts)}", ""]
    against = "base" if results.base else "baseline"
    if notes:
        head += [*[f"> {code(n)}" for n in notes], ""]
    head += ["| | " + " | ".join(_header(against)[:1] + _header(against)[2:]) + " | why |",
             "|---|---|---|--:|--:|--:|--:|---|---|"]
    groups = [_markdown_rows(v) for v in verdicts]
    tail = [
        "", *_graph_changes(verdicts, drift), *_inference_moves(verdicts, against),
        *_memory_moves(verdicts, against),
        _details("Per-phase medians (seconds), peak memory", _phases(results)),
        _details("Tag statistics", _tags(results)),
        _details("Environment", _environment(results, baseline)),
        _details("Updating the baseline", update_hint),
    ]
    text = "\n".join([*head, *(row for group in groups for row in group), *tail]) + "\n"
    if len(text.encode()) <= LIMIT:
        return text
    # Keep the verdict table (failing models first, each with all its rows) and drop the details.
    groups.sort(key=lambda group: not group[0].startswith(FAILING))
    kept: list[str] = []
    budget = LIMIT - len("\n".join(head).encode()) - 200
    for group in groups:
        budget -= sum(len(row.encode()) + 1 for row in group)
        if budget < 0:
            break
        kept += group
    shown = sum(1 for row in kept if not row.startswith("| |"))
    note = (f"\n_Truncated: {len(groups) - shown} of {len(groups)} models and the details left "
            "out to stay under the comment size limit; see the JSON report._\n")
    return "\n".join([*head, *kept]) + "\n" + note


FAILING = tuple(f"| {EMOJI[o]} |" for o in (Outcome.REGRESSED, Outcome.FAILED))


def _markdown_rows(verdict: Verdict) -> list[str]:
    """A model's rows of the verdict table: its emoji, name and why on the first."""
    rows = []
    for i, (name, before, after, change, p, gate) in enumerate(metric_rows(verdict)):
        lead = (f"| {EMOJI[verdict.outcome]} | {code(verdict.name)} | " if i == 0 else "| | | ")
        why = code(_why(verdict)) if i == 0 and verdict.reasons else ""
        rows.append(f"{lead}{name} | {before} | {after} | {change} | {p} | {gate} | {why} |")
    return rows


def _graph_changes(verdicts: list[Verdict], drift: list[str] | None) -> list[str]:
    changed = changed_graphs(verdicts)
    if not changed:
        return []
    body = []
    if drift:
        body.append("Measured against a baseline from another environment ("
                    + code("; ".join(drift)) + "): the graph compares anyway.\n")
    for verdict in changed:
        assert verdict.structure is not None
        body.append(f"**{code(verdict.name)}**\n\n"
                    f"{diff.as_markdown(verdict.structure, GRAPH_ROWS)}")
    names = ", ".join(v.name for v in changed)
    return [_details(f"Graph changes: {in_html(names)}", "\n".join(body))]


def _inference_moves(verdicts: list[Verdict], against: str) -> list[str]:
    moved = moved_inference(verdicts)
    if not moved:
        return []
    body = [f"**{code(v.name)}**: {_moved_by(v, LATENCY)}\n\n"
            f"{charts.mermaid(v, against, NOW[against])}"
            f"\n\n{_delta_table(v.moved, 'own time', 'ms', against)}" for v in moved]
    names = ", ".join(v.name for v in moved)
    return [_details(f"Inference: where it moved: {in_html(names)}", "\n".join(body))]


def _memory_moves(verdicts: list[Verdict], against: str) -> list[str]:
    grown = grown_memory(verdicts)
    if not grown:
        return []
    body = [f"**{code(v.name)}**: {_moved_by(v, INFERENCE_MEMORY)}\n\n"
            + _delta_table(v.grown, "its kernels' outputs", "MB", against) for v in grown]
    names = ", ".join(v.name for v in grown)
    return [_details(f"Inference memory: where it moved: {in_html(names)}", "\n".join(body))]


def _delta_table(rows: tuple[ModuleDelta, ...], what: str, unit: str, against: str) -> str:
    """How each module's own amount moved, as a markdown table."""
    lines = "".join(f"| {code(row.where)} | {row.before:.3f} | {row.after:.3f} | "
                    f"{row.delta:+.3f} |\n" for row in rows)
    return (f"| module ({what}) | {against} {unit} | {NOW[against]} {unit} | Δ {unit} |\n"
            f"|---|--:|--:|--:|\n{lines}")


def _details(summary_text: str, body: str) -> str:
    return f"<details><summary>{summary_text}</summary>\n\n{body}\n\n</details>"


def _phases(results: Results) -> str:
    """Each phase's median seconds, and the worker's peak resident memory: while loading,
    during an export (the median of the timed ones), and over its whole life (loading, the
    exports and, where asked, the inference profile)."""
    phases = [*GATED_PHASES, TOTAL]
    lines = ["| model | load | " + " | ".join(phases)
             + " | load peak | export peak | peak memory |",
             "|---" * (len(phases) + 5) + "|"]
    for name, record in results.measured.items():
        cells = [f"{median(record.samples[p]):.3f}" if p in record.samples else "-"
                 for p in phases]
        peaks = [_mb(record.load_peak_bytes),
                 _mb(median(record.export_peak_bytes) if record.export_peak_bytes else None),
                 _mb(record.peak_rss_bytes)]
        lines.append(f"| {code(name)} | {record.load_s:.2f} | " + " | ".join(cells)
                     + " | " + " | ".join(peaks) + " |")
    return "\n".join(lines)


def _mb(count: float | None) -> str:
    return "-" if count is None else f"{count / 1e6:,.0f} MB"


def _tags(results: Results) -> str:
    lines = ["| model | exporter | nodes | exact | inferred | unattributed |",
             "|---|---|---|---|---|---|"]
    for name, record in results.measured.items():
        s = record.statistics
        lines.append(f"| {code(name)} | {record.exporter} | {s.nodes} | {s.exact} | "
                     f"{s.inferred} | {s.unattributed} |")
    return "\n".join(lines)


def _environment(results: Results, baseline: Results | None) -> str:
    env = results.environment.to_json()
    lines = [f"- {key}: {code(str(value))}" for key, value in env.items() if key != "libraries"]
    lines += [f"- {code(key)} {code(str(value))}" for key, value in env["libraries"].items()]
    if baseline:
        lines.append(f"- baseline measured {code(baseline.created)}, calibration "
                     f"{baseline.environment.calibration_s:.3f} s")
    return "\n".join(lines)


def verdict_annotations(verdicts: list[Verdict], manifest: str | None, lines: dict[str, int]
                ) -> list[Annotation]:
    """One annotation per verdict worth a look, on the model's line of the manifest."""
    return [
        Annotation(ANNOTATION_KIND[v.outcome], _why(v) or v.outcome.value,
                   file=manifest if v.name in lines else None, line=lines.get(v.name),
                   title=f"modelexport: {v.name} {v.outcome.value}")
        for v in verdicts if v.outcome in ANNOTATION_KIND
    ]


def located(kind: str, problems: Sequence[Problem], title: str | None = None
            ) -> list[Annotation]:
    """Manifest problems as annotations on their lines."""
    return [Annotation(kind, p.message, str(p.path), p.line, title) for p in problems]


def outputs(verdicts: list[Verdict], results_path: str, reports: dict[str, str],
            failed: bool) -> dict[str, str]:
    """The step outputs: ``verdict`` pass|fail (as the exit code), ``regressions`` = models
    failing the gate, ``compared`` = models compared with their baseline (0: the run gated
    nothing), the results' path and each report's (``reports``: output name -> path, empty
    where not written)."""
    failing = sum(1 for v in verdicts if v.outcome.fails_build)
    return {"verdict": "fail" if failed else "pass", "regressions": str(failing),
            "compared": str(sum(1 for v in verdicts if v.compared)),
            "results-path": results_path, **reports}


def as_json(verdicts: list[Verdict], notes: list[str], base: str | None = None) -> str:
    """The JSON report (``schemas/report.schema.json``). ``base``: the label of the pull
    request's base the verdicts compared with (None: the stored baseline)."""
    compared_with = {"kind": "base" if base else "baseline", "label": base}
    return json.dumps({"version": 2, "summary": summary(verdicts),
                       "compared_with": compared_with, "notes": notes,
                       "models": [v.to_json() for v in verdicts]}, indent=1) + "\n"
