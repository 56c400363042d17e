"""The pictures of where inference time moved: the Mermaid chart rendered by the real mermaid
library in chromium, the differential flame graph read as XML."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from modelexport.gate.compare import Outcome, Verdict
from modelexport.gate.latency import ModuleDelta
from modelexport.gate.metric import Change
from modelexport.publish import charts, report

from browser import mermaid_svg
from harness import measured, results_of

HOSTILE = 'encoder.layer.{0..11}.x" %% <script>alert(1)</script>`\nend'


def moved(name: str = "bert") -> Verdict:
    rows = (ModuleDelta("encoder.layer.{0..11}.intermediate.dense", 24.0, 96.0, 12),
            ModuleDelta(HOSTILE, 10.0, 4.0),
            ModuleDelta("pooler", 0.5, 0.6))
    return Verdict(name, Outcome.REGRESSED, ("inference +80.0 %",), changes=(
        Change("inference", "ms", 50.0, 90.0, 1.8, 0.0001, "worse"),), moved=rows, timed=True)


def _fence(markdown: str) -> str:
    (chart,) = re.findall(r"```mermaid\n(.*?)```", markdown, re.S)
    return chart


def test_the_chart_renders_with_the_real_mermaid_and_draws_its_bars() -> None:
    markdown = report.markdown([moved()], results_of({"bert": measured([1.0])}), None, [],
                               "hint")
    chart = _fence(markdown)
    svg = mermaid_svg(chart)
    drawn = ET.fromstring(svg)
    bars = drawn.findall(".//{http://www.w3.org/2000/svg}g[@class='bar-plot-0']/"
                         "{http://www.w3.org/2000/svg}rect")
    assert len(bars) == 3
    # Every module is named on its axis; the hostile name's markup is gone.
    labels = "".join(drawn.itertext())
    assert "pooler" in labels and "script_alert(1)" in labels and "<script" not in svg
    # The renderer is the check: text it cannot parse is refused.
    with pytest.raises(ValueError, match="cannot render"):
        mermaid_svg(chart.replace("x-axis [", "x-axis ["'"', 1))


def test_labels_from_the_model_cannot_leave_their_quotes() -> None:
    chart = charts.mermaid(moved('b"e%%rt'), "baseline", "current")
    assert chart.count('"') == 2 + 2 * 3 + 2  # title, three labels, the axis name
    assert "%%" not in chart and "<" not in chart and "`" not in chart.strip("`")


def test_the_differential_flame_graph_is_xml_with_a_box_per_module_coloured_by_change(
) -> None:
    def latency(scale: float) -> dict:
        modules = {"": [0.1, 10.0 * scale], "encoder": [0.0, 9.9 * scale],
                   "encoder.layer.0": [4.0 * scale, 4.0 * scale], "encoder.layer.1": [5.9, 5.9],
                   HOSTILE: [0.0, 0.0]}
        return {"settings": {"runs": 5, "warmup": 1, "threads": 1, "optimization": "all"},
                "latency_ms": [10.0 * scale] * 5, "attributed": 1.0, "modules": modules}

    now = results_of({"bert": measured([1.0], inference=latency(1.5)), "vit": measured([1.0])})
    before = results_of({"bert": measured([1.0], inference=latency(1.0))}, kind="baseline")
    svg = charts.differential_svg(now, before, [moved(), Verdict("vit", Outcome.UNCHANGED)])
    drawn = ET.fromstring(svg)
    tips = [t.text for t in drawn.iter("{http://www.w3.org/2000/svg}title")]
    assert any(tip.startswith("encoder.layer.0: own 4.000 -> 6.000 ms") for tip in tips)
    fills = {t.text.split(":")[0]: r.get("fill") for g in drawn.iter("{http://www.w3.org/2000/svg}g")
             for t, r in [(g.find("{http://www.w3.org/2000/svg}title"),
                           g.find("{http://www.w3.org/2000/svg}rect"))] if t is not None}
    assert fills["encoder.layer.0"] == "rgb(255,0,0)"  # the largest change: full red
    assert fills["encoder.layer.1"] == "rgb(255,255,255)"  # unchanged: white
    assert "<script>" not in svg  # a name from the model is text
    nothing = charts.differential_svg(now, before, [Verdict("vit", Outcome.UNCHANGED)])
    assert "no model's inference time moved" in ET.fromstring(nothing)[2].text


def test_a_comment_with_a_chart_for_each_of_100_models_stays_within_the_limit() -> None:
    names = [f"model-{i:03d}" for i in range(100)]
    results = results_of({name: measured([1.0]) for name in names})
    text = report.markdown([moved(name) for name in names], results, None, [], "hint")
    assert len(text.encode()) <= report.LIMIT
