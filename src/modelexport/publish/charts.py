"""Pictures of where a model's inference time moved: a Mermaid chart GitHub draws itself
in a PR comment or job summary, and a differential flame graph by module as a
self-contained SVG for the run's artifact. Pure."""

from __future__ import annotations

from modelexport import modulepath
from modelexport.escape import in_html, in_mermaid
from modelexport.gate.compare import Verdict
from modelexport.gate.latency import Latency
from modelexport.gate.records import Measured
from modelexport.gate.results import Results


def mermaid(verdict: Verdict, against: str, now: str) -> str:
    """A fenced ``xychart-beta`` of the modules whose own time moved most: bars this run's
    milliseconds, the line ``against``'s (the baseline's, or the base's)."""
    rows = verdict.moved
    labels = ", ".join(f'"{_label(row.where)}"' for row in rows)
    top = max((max(row.before, row.after) for row in rows), default=0.0)
    return "\n".join([
        "```mermaid", "xychart-beta horizontal",
        f'    title "{in_mermaid(verdict.name)}: own ms a run, bars {now}, line {against}"',
        f"    x-axis [{labels}]",
        f'    y-axis "ms" 0 --> {top * 1.1:.4g}',
        f"    bar [{', '.join(f'{row.after:.4g}' for row in rows)}]",
        f"    line [{', '.join(f'{row.before:.4g}' for row in rows)}]",
        "```"])


LABEL = 40  # characters; mermaid drops every axis label when the longest does not fit


def _label(where: str) -> str:
    """A module as an axis label: its end, the most specific part, where it is long."""
    shown = in_mermaid(where)
    return shown if len(shown) <= LABEL else ".." + shown[-(LABEL - 2):]


# --- the differential flame graph ---------------------------------------------------------

WIDTH = 1200  # pixels, as flamegraph.pl draws
ROW = 18
FONT = 11
CHAR = 6.3  # pixels per character at FONT: how much of a name fits a box


def differential_svg(results: Results, baseline: Results | None,
                     verdicts: list[Verdict]) -> str:
    """One SVG with a differential flame graph per model whose inference time moved: each
    module a box as wide as its inclusive time in this run, under its parent (the root on
    top, as an icicle), coloured by how its own time changed against the baseline's (or
    the base's): red slower, blue faster, white the same, the strongest colour for the
    largest change of that model. Hovering a box shows its path and both times."""
    before_side = results.base.models if results.base else baseline.models if baseline else {}
    graphs = []
    for verdict in verdicts:
        if not verdict.moved:
            continue
        now, was = results.models.get(verdict.name), before_side.get(verdict.name)
        if (isinstance(now, Measured) and isinstance(was, Measured) and now.inference
                and was.inference):
            graphs.append((verdict.name, now.inference, was.inference))
    y = 30
    parts = []
    for name, now_latency, was_latency in graphs:
        drawn, height = _graph(name, now_latency, was_latency, y)
        parts.append(drawn)
        y += height + 30
    if not graphs:
        parts.append(f'<text x="10" y="{y}" font-size="{FONT + 2}">no model\'s inference '
                     "time moved</text>")
        y += 20
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{y}" '
        f'viewBox="0 0 {WIDTH} {y}" font-family="Verdana, sans-serif" font-size="{FONT}">',
        f'<rect width="{WIDTH}" height="{y}" fill="#f8f8f8"/>',
        '<text x="10" y="18" font-size="14">modelexport: where inference time moved '
        "(width: this run's time; red slower, blue faster than before)</text>",
        *parts, "</svg>", ""])


def _graph(name: str, now: Latency, was: Latency, top: int) -> tuple[str, int]:
    paths = sorted(now.modules, key=modulepath.natural_order)
    children: dict[str, list[str]] = {}
    for path in paths:
        if path:
            children.setdefault(_parent(path, now.modules), []).append(path)
    total = now.modules.get("", (0.0, 0.0))[1] or 1.0
    change = {path: now.modules[path][0] - was.modules.get(path, (0.0, 0.0))[0]
              for path in paths}
    strongest = max((abs(delta) for delta in change.values()), default=0.0) or 1.0
    boxes: list[str] = []
    deepest = 0

    def draw(path: str, x: float, depth: int) -> None:
        nonlocal deepest
        width = now.modules[path][1] / total * (WIDTH - 20)
        if width < 0.5:
            return
        deepest = max(deepest, depth)
        boxes.append(_box(path, x, top + 20 + depth * ROW, width, now, was,
                          change[path] / strongest))
        for child in children.get(path, []):
            draw(child, x, depth + 1)
            x += now.modules[child][1] / total * (WIDTH - 20)

    draw("", 10.0, 0)
    title = (f'<text x="10" y="{top + 14}" font-size="{FONT + 2}">{in_html(name)}: '
             f"{total:.3f} ms of kernels a run</text>")
    return "\n".join([title, *boxes]), 20 + (deepest + 1) * ROW


def _parent(path: str, modules: dict[str, tuple[float, float]]) -> str:
    """The nearest ancestor the profile has (it has them all; the root at worst)."""
    return next(up for up in modulepath.ancestors(path)[1:] if up in modules or not up)


def _box(path: str, x: float, y: int, width: float, now: Latency, was: Latency,
         change: float) -> str:
    """One module: its box, its tooltip, and as much of its name as fits."""
    before = was.modules.get(path, (0.0, 0.0))
    after = now.modules[path]
    shown = modulepath.leaf(path) or "(root)"
    fits = int((width - 4) / CHAR)
    label = shown if len(shown) <= fits else shown[:max(fits - 2, 0)] + ".." if fits > 2 else ""
    tip = (f"{path or '(root)'}: own {before[0]:.3f} -> {after[0]:.3f} ms, with its "
           f"children {before[1]:.3f} -> {after[1]:.3f} ms")
    return (f'<g><title>{in_html(tip)}</title><rect x="{x:.2f}" y="{y}" '
            f'width="{width:.2f}" height="{ROW - 1}" fill="{_colour(change)}" '
            f'stroke="#ffffff" stroke-width="0.5"/>'
            + (f'<text x="{x + 2:.2f}" y="{y + ROW - 5}">{in_html(label)}</text>'
               if label else "") + "</g>")


def _colour(change: float) -> str:
    """Red for a slower module, blue for a faster one, by how much of the model's largest
    change it is; white for none."""
    fade = round(255 * (1 - min(abs(change), 1.0)))
    return f"rgb(255,{fade},{fade})" if change > 0 else f"rgb({fade},{fade},255)"
