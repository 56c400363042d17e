"""A verification rendered for people: each module's gap in graph order, and the verdict
line that names the first divergence. Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from modelexport import modulepath
from modelexport.escape import code
from modelexport.verify.divergence import Gap, ModuleGap, Verification, number


def _gap(gap: Gap) -> tuple[str, str, str]:
    return number(gap.max_abs), number(gap.max_rel), f"{gap.cosine:.6f}"


def _cells(module: ModuleGap) -> tuple[str, ...]:
    added = number(module.added)
    return (*_gap(module.outputs), number(module.inputs.max_abs),
            added if module.measured is not None else f"~{added}")


def verdict(found: Verification) -> str:
    """One line: the first divergence, or why there is none."""
    tolerance = f"{found.tolerance:g} max abs"
    if found.first is not None:
        return f"{found.first.said_first()}; tolerance {tolerance})"
    if found.within:
        worst = max(found.modules, key=lambda m: m.outputs.max_abs, default=None)
        where = f", largest at {code(worst.module)}" if worst and worst.outputs.max_abs else ""
        return (f"within tolerance ({tolerance}): outputs {number(found.outputs.max_abs)}"
                f"{where}")
    ranked = found.ranked
    most = f"; most added by {code(ranked[0].module)} ({number(ranked[0].added)})" \
        if ranked and ranked[0].added else ""
    return (f"beyond tolerance ({tolerance}: outputs {number(found.outputs.max_abs)}), but "
            f"no module adds that much alone: the gap grows module by module{most}")


def missing(found: Verification) -> str:
    """A line on the values one run lacks, or ''. Their names come from the file: each in
    a code span, as module names are."""
    lacking = sorted({name for m in found.modules for name in m.missing})
    blind = sum(1 for m in found.modules if m.blind)
    if not lacking and not blind:
        return ""
    said = []
    if lacking:
        said.append(f"{len(lacking)} module output(s) compared without them: "
                    f"{', '.join(map(code, lacking[:3]))}{', ...' if len(lacking) > 3 else ''}")
    if blind:
        said.append(f"{blind} module(s) take such a value, taken as exact")
    return ("values one run does not have (made otherwise by a conversion or another "
            f"exporter, or with no PyTorch tensor): {'; '.join(said)}")


HEADER = ("module", "class", "out max abs", "out rel", "cosine", "in max abs", "adds")


def as_text(found: Verification) -> str:
    table: list[tuple[str, ...]] = [HEADER]
    for module in found.modules:
        name = "  " * (modulepath.depth(module.module) - 1) + modulepath.leaf(module.module)
        table.append((name, module.cls, *_cells(module)))
    table.append(("(graph outputs)", "", *_gap(found.outputs), "", ""))
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    lines = [f"{found.candidate} against {found.reference}, module by module:"]
    lines += ["  ".join(cell.ljust(width) if i < 2 else cell.rjust(width)
                        for i, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip()
              for row in table]
    lines += [line for line in (missing(found), verdict(found)) if line]
    return "\n".join(lines) + "\n"


def as_markdown(found: Verification) -> str:
    lines = [f"**{code(found.candidate)} against {code(found.reference)}**: {verdict(found)}",
             "", "| " + " | ".join(HEADER) + " |", "|---|---|--:|--:|--:|--:|--:|"]
    for module in found.modules:
        lines.append(f"| {code(module.module)} | {code(module.cls)} | "
                     + " | ".join(_cells(module)) + " |")
    if missing(found):
        lines += ["", missing(found)]
    return "\n".join(lines) + "\n"


def overlay(found: Verification, nodes: Sequence[str], modules: Sequence[str | None],
            graph_id: str) -> dict[str, Any]:
    """Model Explorer node data: each node of the reference graph valued by what its module
    (the innermost one compared) added, keyed by node name as the ONNX adapter names nodes.
    A mismatch (a shape that differs, a NaN) is the largest value shown."""
    added = {m.module: m.added for m in found.modules}
    finite = [value for value in added.values() if math.isfinite(value)]
    ceiling = max(finite, default=0.0) or 1.0
    results = {}
    for node, module in zip(nodes, modules, strict=True):
        owner = next((above for above in modulepath.ancestors(module or "") if above in added),
                     None)
        if owner is not None:
            value = added[owner]
            results[node] = {"value": value if math.isfinite(value) else ceiling}
    return {graph_id: {
        "results": results,
        "gradient": [{"stop": 0, "bgColor": "#f7fcf5"}, {"stop": 1, "bgColor": "#d7301f"}],
    }}
