"""Per-node and per-module times of a typical run, from the runs' kernel times and where
each kernel belongs. Pure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from modelexport import modulepath
from modelexport.inference.attribute import NOWHERE, Placement
from modelexport.inference.events import KernelStats, Runs
from modelexport.inference.records import ModuleTime, NodeTime, Profile, Settings
from modelexport.stats import median_interval

UNKNOWN = KernelStats("", 0, 0)  # a kernel the profile's first run said nothing of


def aggregate(model: str, settings: Settings, runs: Runs, placed: dict[str, Placement],
              classes: dict[str, str], stats: dict[str, KernelStats] | None = None) -> Profile:
    """Per-node and per-module times of a typical run: the mean over the middle half of
    the runs ranked by total kernel time. That drops runs the machine disturbed, as a
    median would, and unlike per-module medians it adds up: the modules' self times sum to
    the total. A kernel with no module counts as the root's own time, so the root's
    inclusive time is the total; it is not counted as attributed."""
    count = len(runs.kernels)
    own: dict[str, list[float]] = defaultdict(lambda: [0.0] * count)
    ops: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0] * count))
    calls: dict[str, int] = defaultdict(int)
    for run, kernels in enumerate(runs.kernels):
        for node, (us, n) in kernels.items():
            place = placed.get(node, NOWHERE)
            where = place.module or ""
            own[where][run] += us / 1000
            ops[where][place.op_type][run] += us / 1000
            calls[where] += n
    inclusive: dict[str, list[float]] = defaultdict(lambda: [0.0] * count)
    for path, times in own.items():
        for above in modulepath.ancestors(path):
            inclusive[above] = [a + b for a, b in zip(inclusive[above], times, strict=True)]
    totals = [sum(us for us, _ in kernels.values()) / 1000 for kernels in runs.kernels]
    typical = _typical(totals)
    modules = tuple(
        ModuleTime(path, classes.get(path, ""), typical(own[path]), typical(inclusive[path]),
                   median_interval(own[path]), median_interval(inclusive[path]),
                   calls[path] // max(count, 1),
                   tuple(sorted(((op, typical(t)) for op, t in ops[path].items()),
                                key=lambda item: -item[1])))
        for path in sorted(inclusive, key=modulepath.natural_order))
    placed_ms = sum(typical(times) for path, times in own.items() if path)
    total = typical(totals)
    # min: the two sums round differently when everything is placed (1.0000000000000002).
    return Profile(model, settings, tuple(us / 1000 for us in runs.latency_us), tuple(totals),
                   min(placed_ms / total, 1.0) if total else 0.0, modules,
                   _nodes(runs, placed, typical, stats or {}),
                   max((one.arena_peak_bytes for one in (stats or {}).values()), default=0))


def _typical(totals: list[float]) -> Callable[[Sequence[float]], float]:
    """The mean over the middle half of the runs, ranked by ``totals``."""
    ranked = sorted(range(len(totals)), key=totals.__getitem__)
    cut = len(ranked) // 4
    kept = ranked[cut:len(ranked) - cut] or ranked
    return lambda values: sum(values[i] for i in kept) / len(kept) if kept else 0.0


def _nodes(runs: Runs, placed: dict[str, Placement],
           typical: Callable[[Sequence[float]], float], stats: dict[str, KernelStats]
           ) -> tuple[NodeTime, ...]:
    names = {node for kernels in runs.kernels for node in kernels}
    timed = []
    for name in names:
        place = placed.get(name, NOWHERE)
        known = stats.get(name, UNKNOWN)
        per_run = [kernels.get(name, (0.0, 0)) for kernels in runs.kernels]
        timed.append(NodeTime(name, place.op_type, place.module, place.how,
                              place.members, typical([us / 1000 for us, _ in per_run]),
                              max(n for _, n in per_run), place.absorbed,
                              known.shapes, known.output_bytes, known.temporary_bytes))
    return tuple(sorted(timed, key=lambda node: (-node.ms, node.name)))
