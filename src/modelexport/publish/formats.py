"""The report files a judged run can be written as: a registry. A new format is a function
that renders a judged run, and one entry in ``FORMATS``; ``check`` and ``compare`` then take
``--report-NAME FILE``, and ``--report-dir`` (the action's output folder) holds it too.

Imported by the command line to build its options, so the renderers are imported when one
runs, not here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelexport.gate.judge import Judgement

Render = Callable[["Judgement", str], str]  # (the judged run, how to update the baseline)


@dataclass(frozen=True)
class Format:
    name: str  # the option is --report-NAME
    file: str  # its file name in a --report-dir
    help: str
    render: Render
    output: str  # the action's step output naming the file written


def _markdown(judged: Judgement, hint: str) -> str:
    from modelexport.publish import report

    return report.markdown(judged.verdicts, judged.results, judged.baseline, judged.notes,
                           hint, judged.drift)


def _json(judged: Judgement, hint: str) -> str:
    from modelexport.publish import report

    base = judged.results.base
    return report.as_json(judged.verdicts, judged.notes, base.label if base else None)


def _bmf(judged: Judgement, hint: str) -> str:
    from modelexport.publish import benchmarks

    return json.dumps(benchmarks.bmf(judged.results), indent=1) + "\n"


def _benchmark_action(judged: Judgement, hint: str) -> str:
    from modelexport.publish import benchmarks

    return json.dumps(benchmarks.benchmark_action(judged.results, judged.verdicts),
                      indent=1) + "\n"


def _svg(judged: Judgement, hint: str) -> str:
    from modelexport.publish import charts

    return charts.differential_svg(judged.results, judged.baseline, judged.verdicts)


MARKDOWN = Format("md", "report.md", "the markdown report (the PR comment's body)", _markdown,
                  "report-path")
FORMATS = {f.name: f for f in (
    MARKDOWN,
    Format("json", "report.json", "the verdicts as JSON (schemas/report.schema.json)", _json,
           "report-json-path"),
    Format("bmf", "bmf.json", "this run's medians in Bencher Metric Format (bencher run "
           "--adapter json --file FILE)", _bmf, "bmf-path"),
    Format("benchmark-action", "benchmark-action.json", "this run's medians for "
           "github-action-benchmark (tool: customSmallerIsBetter)", _benchmark_action,
           "benchmark-action-path"),
    Format("svg", "moved.svg", "a differential flame graph by module of each model whose "
           "inference time moved (SVG)", _svg, "svg-path"),
)}
