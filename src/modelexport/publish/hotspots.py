"""A profile rendered for people: where the inference time (and memory) of one model goes,
per module.

Pure. Rows are modules down to a depth (their descendants folded into them), in tree order;
modules under a share of the total are left out and counted, so a table fits a terminal.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence

from modelexport import modulepath
from modelexport.diff import size
from modelexport.escape import code
from modelexport.inference.memory import Memory
from modelexport.inference.records import ModuleTime, Profile

MIN_SHARE = 0.005  # of the total: smaller modules are counted, not shown
TOP_OPS = 2


def rows(profile: Profile, max_depth: int) -> tuple[list[ModuleTime], int]:
    """The modules shown at ``max_depth`` and how many of that depth were too small."""
    total = profile.total_ms or 1.0
    shallow = [m for m in profile.modules if modulepath.depth(m.path) <= max_depth]
    shown = [m for m in shallow if m.inclusive_ms / total >= MIN_SHARE or not m.path]
    return shown, len(shallow) - len(shown)


def inclusive_ops(profile: Profile) -> dict[str, list[tuple[str, float]]]:
    """Each module's time by op type, its descendants' included, heaviest first."""
    summed: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for module in profile.modules:
        for above in modulepath.ancestors(module.path):
            for op, ms in module.ops:
                summed[above][op] += ms
    return {path: sorted(ops.items(), key=lambda item: -item[1]) for path, ops in summed.items()}


def _code_or_none(text: str) -> str:
    return code(text) if text else ""


def _ops(ops: Sequence[tuple[str, float]], total: float) -> str:
    return ", ".join(f"{op} {ms / total:.0%}" for op, ms in ops[:TOP_OPS]) if total else ""


def headline(profile: Profile) -> str:
    settings = profile.settings
    threads = settings.threads or "ORT's default"
    latency = statistics.median(profile.latency_ms) if profile.latency_ms else 0.0
    # Kernels of one run can overlap in time (3.4 ms of kernels in a 1.6 ms run was seen
    # with ORT's default threads): unexplained, a sum above the run reads as a bug.
    overlap = " (kernels overlapped in time: their sum exceeds the run)" \
        if profile.total_ms > latency else ""
    return (f"{profile.model}: {latency:.3f} ms a run (median of {settings.runs}, after "
            f"{settings.warmup} warm-up), kernels {profile.total_ms:.3f} ms{overlap}; "
            f"optimization {settings.optimization}, threads {threads}; "
            f"{profile.attributed:.1%} of kernel time attributed to a module below the root")


def as_text(profile: Profile, max_depth: int) -> str:
    shown, hidden = rows(profile, max_depth)
    ops = inclusive_ops(profile)
    table = [("module", "class", "self ms", "incl ms", "share", "calls", "top ops")]
    for module in shown:
        name = "  " * modulepath.depth(module.path) + (modulepath.leaf(module.path) or "(root)")
        table.append((name, module.cls, f"{module.self_ms:.3f}", f"{module.inclusive_ms:.3f}",
                      f"{module.inclusive_ms / (profile.total_ms or 1):.1%}",
                      str(module.calls), _ops(ops[module.path], module.inclusive_ms)))
    lines = [headline(profile), *_aligned(table, left=(0, 1, 6))]
    if hidden:
        lines.append(f"({hidden} smaller modules not shown; --depth {max_depth} folds deeper "
                     "ones into their ancestors)")
    return "\n".join(lines) + "\n"


def as_markdown(profile: Profile, max_depth: int) -> str:
    shown, hidden = rows(profile, max_depth)
    ops = inclusive_ops(profile)
    lines = [f"**{code(headline(profile))}**", "",
             "| module | class | self ms | incl ms | share | calls | top ops |",
             "|---|---|--:|--:|--:|--:|---|"]
    for module in shown:
        lines.append(f"| {code(module.path or '(root)')} | {code(module.cls)} | "
                     f"{module.self_ms:.3f} | {module.inclusive_ms:.3f} | "
                     f"{module.inclusive_ms / (profile.total_ms or 1):.1%} | {module.calls} | "
                     f"{_code_or_none(_ops(ops[module.path], module.inclusive_ms))} |")
    if hidden:
        lines.append(f"\n{hidden} smaller modules not shown.")
    return "\n".join(lines) + "\n"


def memory_text(found: Memory, max_depth: int) -> str:
    """Where inference memory goes, per module down to ``max_depth``: the weights its nodes
    read, the activations its kernels produce and the temporary memory they allocate, its
    own and with its descendants'. Modules under a share of every total are counted, not
    shown."""
    placed = found.activation_bytes - found.unattributed_activation_bytes
    lines = [f"memory: weights {size(found.weight_bytes)}, activations "
             f"{size(found.activation_bytes)} a run ("
             f"{placed / (found.activation_bytes or 1):.1%} of them produced by a module's "
             f"kernels), temporaries {size(found.temporary_bytes)}"
             + (f", ORT's arena at most {size(found.arena_peak_bytes)} in use"
                if found.arena_peak_bytes else "")]
    table = [("module", "class", "own weights", "weights", "own activations", "activations",
              "own temporaries", "temporaries")]
    shallow = [m for m in found.modules if modulepath.depth(m.path) <= max_depth]
    shown = [m for m in shallow if not m.path
             or m.weight_bytes >= MIN_SHARE * found.weight_bytes > 0
             or m.activation_bytes >= MIN_SHARE * found.activation_bytes > 0
             or m.temporary_bytes >= MIN_SHARE * found.temporary_bytes > 0]
    for module in shown:
        name = "  " * modulepath.depth(module.path) + (modulepath.leaf(module.path) or "(root)")
        table.append((name, module.cls, size(module.own_weight_bytes), size(module.weight_bytes),
                      size(module.own_activation_bytes), size(module.activation_bytes),
                      size(module.own_temporary_bytes), size(module.temporary_bytes)))
    lines += _aligned(table, left=(0, 1))
    if len(shallow) > len(shown):
        lines.append(f"({len(shallow) - len(shown)} smaller modules not shown)")
    return "\n".join(lines) + "\n"


def _aligned(table: Sequence[tuple[str, ...]], left: tuple[int, ...]) -> list[str]:
    """A table's rows as text in columns: the ``left`` ones left-aligned (names), the others
    right-aligned (figures)."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return ["  ".join(cell.ljust(width) if i in left else cell.rjust(width)
                      for i, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in table]
