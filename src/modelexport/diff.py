"""What changed between two structures, and where: a pure diff of two ``Structure``s.

Modules are compared by path. A new (or removed) subtree is one change at its top, with
everything below it counted in. Changes of modules whose paths differ only in numeric
indices (``encoder.layer.3.attention``, ``encoder.layer.7.attention``) and that changed
the same way fold into one row (``encoder.layer.{3,7}.attention ... (each)``). The order
is deterministic: signature, modules in path order, then the graph's totals.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from modelexport import modulepath
from modelexport.escape import code
from modelexport.onnxfile import TensorSig
from modelexport.structure import ModuleStructure, Structure

TOP_OPS = 4  # ops named in a "new module" line before "..."


@dataclass(frozen=True)
class Row:
    where: str  # a module path, a folded pattern, "signature" or "graph"
    what: str
    count: int = 1  # modules folded into this row


@dataclass(frozen=True)
class StructureDiff:
    signature: tuple[str, ...]  # input/output changes, one line each
    modules: tuple[Row, ...]  # folded module changes
    graph: str  # the totals, always said
    graph_changed: bool  # nodes, weights, opset or IR version differ

    @property
    def identical(self) -> bool:
        return not (self.signature or self.modules or self.graph_changed)

    def to_json(self) -> dict[str, Any]:
        return {"identical": self.identical, "signature": list(self.signature),
                "modules": [{"where": r.where, "what": r.what, "count": r.count}
                            for r in self.modules],
                "graph": self.graph}


def diff(before: Structure, after: Structure) -> StructureDiff:
    changes = _module_changes(before.modules, after.modules)
    graph, graph_changed = _totals(before, after)
    return StructureDiff(tuple(_signature(before, after)), tuple(fold(changes)), graph,
                         graph_changed)


# --- modules ---------------------------------------------------------------------------


def _module_changes(before: dict[str, ModuleStructure], after: dict[str, ModuleStructure]
                    ) -> list[tuple[str, str]]:
    """(path, what) for each change, a new or removed subtree counted at its top."""
    changes = [(path, _changed(before[path], after[path]))
               for path in before.keys() & after.keys() if before[path] != after[path]]
    for side, other, word in ((after, before, "new"), (before, after, "removed")):
        occupied = {prefix for path in other for prefix in _prefixes(path)}
        subtrees: dict[str, list[ModuleStructure]] = {}
        for path in side.keys() - other.keys():
            top = next((p for p in _prefixes(path) if p not in occupied), path)
            subtrees.setdefault(top, []).append(side[path])
        changes += [(top, _subtree(word, side.get(top), members))
                    for top, members in subtrees.items()]
    return changes


def _prefixes(path: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``: the ancestors below the root, outermost first,
    and itself. A new module's row is at the first of them the other side has nothing under."""
    return modulepath.lineage(path)[1:] or [path]


def _subtree(word: str, top: ModuleStructure | None, members: list[ModuleStructure]) -> str:
    ops: Counter[str] = Counter()
    for member in members:
        ops.update(member.ops)
    nodes = sum(ops.values())
    params = sum(m.param_bytes for m in members)
    what = f"{word} module{f' {top.cls}' if top and top.cls else ''}: {nodes} nodes"
    if ops:
        ranked = sorted(ops.items(), key=lambda item: (-item[1], item[0]))
        shown = ", ".join(f"{op} {n}" for op, n in ranked[:TOP_OPS])
        what += f" ({shown}{', ...' if len(ranked) > TOP_OPS else ''})"
    return what + (f", {size(params)} parameters" if params else "")


def _changed(before: ModuleStructure, after: ModuleStructure) -> str:
    parts = []
    if before.cls != after.cls:
        parts.append(f"class {before.cls} -> {after.cls}")
    ops = sorted(before.ops.keys() | after.ops.keys())
    moved = [f"{op} {before.ops.get(op, 0)} -> {after.ops.get(op, 0)}" for op in ops
             if before.ops.get(op, 0) != after.ops.get(op, 0)]
    if moved:
        parts.append(", ".join(moved))
    if before.param_bytes != after.param_bytes:
        parts.append(f"parameters {sizes(before.param_bytes, after.param_bytes)}")
    return "; ".join(parts)


def fold(changes: Iterable[tuple[str, str]]) -> list[Row]:
    """Rows of changes, those that differ only in numeric path segments folded."""
    groups: dict[tuple[str, str], list[str]] = {}
    for path, what in changes:
        groups.setdefault((modulepath.pattern(path), what), []).append(path)
    rows = []
    for (_, what), members in groups.items():
        members.sort(key=modulepath.natural_order)
        first = modulepath.natural_order(members[0])
        if len(members) == 1:
            rows.append((first, Row(members[0] or "(root)", what)))
        else:
            rows.append((first, Row(modulepath.folded_name(members), f"{what} (each)",
                                    len(members))))
    return [row for _, row in sorted(rows, key=lambda item: (item[0], item[1].what))]


# --- signature and totals --------------------------------------------------------------


def _signature(before: Structure, after: Structure) -> list[str]:
    lines = []
    for kind, old, new in (("input", before.inputs, after.inputs),
                           ("output", before.outputs, after.outputs)):
        old_by, new_by = {s.name: s for s in old}, {s.name: s for s in new}
        lines += [f"{kind} {name!r} removed ({_sig(old_by[name])})" for name in old_by
                  if name not in new_by]
        lines += [f"{kind} {name!r} added ({_sig(new_by[name])})" for name in new_by
                  if name not in old_by]
        lines += [f"{kind} {name!r}: {_sig(old_by[name])} -> {_sig(new_by[name])}"
                  for name in old_by if name in new_by and old_by[name] != new_by[name]]
        common = [n for n in old_by if n in new_by]
        if common != [n for n in new_by if n in old_by]:
            lines.append(f"{kind}s reordered")
    return lines


def _sig(sig: TensorSig) -> str:
    shape = "?" if sig.shape is None else "[" + ", ".join(map(str, sig.shape)) + "]"
    return f"{sig.dtype} {shape}"


def _totals(before: Structure, after: Structure) -> tuple[str, bool]:
    parts = []
    for label, old, new in (("nodes", before.nodes, after.nodes),
                            ("opset", before.opset, after.opset),
                            ("IR version", before.ir_version, after.ir_version)):
        if old != new:
            parts.append(f"{label} {old} -> {new}")
    if before.weight_bytes != after.weight_bytes:
        parts.append(f"weights {sizes(before.weight_bytes, after.weight_bytes)}")
    if parts:
        return ", ".join(parts), True
    return f"unchanged: {after.nodes} nodes, {size(after.weight_bytes)} weights", False


def sizes(before: int, after: int) -> str:
    """``1.2 MB -> 1.5 MB``; with the difference in bytes where both round alike."""
    old, new = size(before), size(after)
    return f"{old} -> {new}" if old != new else f"{old} -> {new} ({after - before:+,} B)"


def size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


# --- rendering -------------------------------------------------------------------------


def shown_rows(found: StructureDiff, limit: int | None = None) -> list[Row]:
    """The rows a report shows: at most ``limit`` module rows, then how many more."""
    modules = list(found.modules)
    if limit is not None and len(modules) > limit:
        modules = [*modules[:limit], Row("...", f"{len(modules) - limit} more module changes")]
    return [*(Row("signature", s) for s in found.signature), *modules, Row("graph", found.graph)]


def as_text(found: StructureDiff, limit: int | None = None) -> str:
    rows = shown_rows(found, limit)
    width = max(len(r.where) for r in rows)
    return "".join(f"{r.where.ljust(width)}  {r.what}\n" for r in rows)


def as_markdown(found: StructureDiff, limit: int | None = None) -> str:
    body = "".join(f"| {code(r.where)} | {code(r.what)} |\n" for r in shown_rows(found, limit))
    return "| where | what changed |\n|---|---|\n" + body


def as_json(found: StructureDiff) -> str:
    return json.dumps(found.to_json(), indent=1) + "\n"
