"""Where inference time goes: ONNX Runtime's per-node profile, attributed to modules.

Pure: no onnxruntime, no torch. ``inference.py`` runs the model and hands over three
things: the exported graph with its module tags, the graph ORT actually ran (its optimized
graph, saved by the session) and the profiler's events. ORT's optimizations rename and fuse
nodes, so a profiled node is traced back through tensor names: a fused node still produces
the output tensors of the subgraph it replaced, and the nodes of that subgraph are those
whose results no longer exist outside it. A node standing for several modules goes to their
lowest common ancestor; one whose outputs are all new goes by the name ORT gave it (named
after an exported node or tensor), else where the nodes it feeds are.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from modelexport.diff import folded_name, pattern
from modelexport.gate.stats import median_interval
from modelexport.onnxfile import Node

SCHEMA_VERSION = 1
OPTIMIZATIONS = ("disable", "basic", "extended", "all")  # ORT's levels; "all" is its default
DEFAULT_RUNS = 20
DEFAULT_WARMUP = 1
_ARGS = ',"args" :'  # where ORT's trace events (onnxruntime 1.32) start their statistics
# Where several exported nodes become one kernel, the overlay shows its time on the heavy
# ones among them (a MatMul fused with its bias Add is the MatMul's time).
HEAVY_OPS = frozenset({"MatMul", "Gemm", "Conv", "ConvTranspose", "Attention",
                       "MultiHeadAttention", "FusedMatMul", "FusedConv", "FusedGemm", "Einsum"})


@dataclass(frozen=True)
class Placement:
    """Where one node of the optimized graph belongs."""

    module: str | None  # '' is the root; None: nothing to attribute it to
    members: tuple[str, ...]  # the exported nodes it computes
    how: str  # node | fused | neighbours | none
    op_type: str  # of the optimized node, without its domain, as ORT's profiler names it


_NOWHERE = Placement(None, (), "none", "")  # a kernel the optimized graph does not name


def common_module(paths: Iterable[str]) -> str:
    """The lowest common ancestor of module paths ('' is the root)."""
    split = [path.split(".") if path else [] for path in paths]
    if not split:
        return ""
    common: list[str] = []
    for parts in zip(*split, strict=False):
        if any(part != parts[0] for part in parts):
            break
        common.append(parts[0])
    return ".".join(common)


def ancestors(path: str) -> list[str]:
    """The module and every module above it, the root last."""
    parts = path.split(".") if path else []
    return [".".join(parts[:i]) for i in range(len(parts), -1, -1)]


def attribute(exported: Sequence[Node], modules: dict[str, str | None],
              optimized: Sequence[Node]) -> dict[str, Placement]:
    """Each optimized node's place; ``modules`` maps exported node names to their tags."""
    producer = {tensor: i for i, node in enumerate(exported) for tensor in node.outputs if tensor}
    consumers: dict[str, list[int]] = defaultdict(list)
    for i, node in enumerate(exported):
        for tensor in node.inputs:
            consumers[tensor].append(i)
    alive = {t for node in optimized for t in (*node.inputs, *node.outputs) if t}
    by_name = {node.name: i for i, node in enumerate(exported)}
    claimed: set[int] = set()
    placed: dict[str, Placement] = {}
    for node in optimized:
        seeds = {producer[t] for t in node.outputs if t in producer} or _named_after(
            node.name, producer, by_name)
        members = _members(seeds - claimed, exported, producer, consumers, alive, claimed)
        claimed |= members
        names = tuple(exported[i].name for i in sorted(members))
        # A folded Constant computes nothing: whichever module made it says nothing of
        # where the kernel's work belongs.
        tags = [tag for i in sorted(members) if exported[i].op_type != "Constant"
                and (tag := modules.get(exported[i].name)) is not None]
        how = "none" if not tags else "node" if len(names) == 1 else "fused"
        placed[node.name] = Placement(common_module(tags) if tags else None, names, how,
                                      _op(node))
    _place_by_neighbours(optimized, placed)
    return placed


def _op(node: Node) -> str:
    return node.op_type.rpartition(".")[2]  # com.microsoft.nchwc.Conv: Conv


def _named_after(name: str, producer: dict[str, int], by_name: dict[str, int]) -> set[int]:
    """For a kernel whose outputs are all new tensors: the exported node ORT named it after.
    Measured (onnxruntime 1.32): its NCHWc layout pass names a convolution after the
    original output tensor plus ``_nchwc`` (ResNet-50: 53 of 55 kernels), and its MatMul+Add
    fusion names the Gemm after the MatMul plus ``/MatMulAddFusion/``."""
    if name.endswith("_nchwc") and name.removesuffix("_nchwc") in producer:
        return {producer[name.removesuffix("_nchwc")]}
    stem = name.rstrip("/").rpartition("/")[0]
    return {by_name[stem]} if stem in by_name else set()


def _members(seeds: set[int], exported: Sequence[Node], producer: dict[str, int],
             consumers: dict[str, list[int]], alive: set[str], claimed: set[int]) -> set[int]:
    """The exported nodes a kernel stands for: ``seeds`` (the producers of its outputs), and,
    walking back, every producer whose results vanished from the optimized graph and were
    used by these members alone (a subgraph shared with other nodes is no one's to claim)."""
    members = set(seeds)
    grown = True
    while grown:
        grown = False
        for member in list(members):
            for tensor in exported[member].inputs:
                source = producer.get(tensor)
                if source is None or source in members or source in claimed or tensor in alive:
                    continue
                if all(user in members for out in exported[source].outputs
                       for user in consumers[out]):
                    members.add(source)
                    grown = True
    return members


def _place_by_neighbours(optimized: Sequence[Node], placed: dict[str, Placement]) -> None:
    """Nodes ORT made up (the Gemm and reshapes of a MatMul+Add fusion, layout reorders)
    go where the nodes they feed are: their work serves those (the Gemm that computes
    ``key`` is fed by the hidden states of the layer before). Only where nothing they feed
    is placed, the nodes that feed them decide. A chain of such nodes settles in a few
    passes."""
    producers = {t: node.name for node in optimized for t in node.outputs if t}
    users: dict[str, list[str]] = defaultdict(list)
    for node in optimized:
        for tensor in node.inputs:
            users[tensor].append(node.name)
    for downstream in (True, False):
        for _ in range(4):
            for node in optimized:
                if placed[node.name].module is not None:
                    continue
                near = ([user for t in node.outputs for user in users[t]] if downstream
                        else [producers[t] for t in node.inputs if t in producers])
                known = [tag for tag in (placed[name].module for name in near) if tag is not None]
                if known:
                    placed[node.name] = Placement(common_module(known), (), "neighbours",
                                                  _op(node))


@dataclass(frozen=True)
class Runs:
    """The profiler's events, per measured run: kernel microseconds and calls per node."""

    latency_us: tuple[float, ...]  # each run, end to end
    kernels: tuple[dict[str, tuple[float, int]], ...]  # node -> (microseconds, calls)


def trace_events(text: str) -> list[dict[str, Any]]:
    """The events of ORT's profile, a Chrome-trace JSON array, each without its ``args``.

    ORT writes one event per line, ``args`` last, and the args (per-thread and memory
    statistics) are most of the bytes: cutting them off before parsing read bert-base's
    trace of 23 runs (13.6 MB) in 0.06-0.13 s instead of 0.19-0.35 s. A quote inside a
    JSON string is escaped, so the marker cannot occur inside a node's name. A trace laid
    out otherwise is parsed whole; one that is not JSON raises ``ValueError``."""
    events = []
    for line in text.splitlines():
        line = line.strip().rstrip(",")
        if line in ("[", "]", ""):
            continue
        cut = line.find(_ARGS)
        try:
            event = json.loads(line[:cut] + "}" if cut > 0 else line)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            return _whole(text)
        events.append(event)
    return events or _whole(text)


def _whole(text: str) -> list[dict[str, Any]]:
    events = json.loads(text)
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ValueError("not a list of trace events")
    return events


def runs_of(events: Sequence[dict[str, Any]], warmup: int, runs: int) -> Runs:
    """Split a Chrome-trace event list into runs (``model_run`` events), the first
    ``warmup`` dropped; kernel events (``<node>_kernel_time``) go to the run they lie in.
    A trace without ``warmup + runs`` runs raises ``ValueError``: the profiler stopped
    recording, and the runs left are not those asked for."""
    windows = sorted((float(e["ts"]), float(e["ts"]) + float(e["dur"]))
                     for e in events if e.get("name") == "model_run")
    if len(windows) < warmup + runs:
        raise ValueError(f"it holds {len(windows)} of the {warmup + runs} runs")
    windows = windows[warmup:]
    starts = [start for start, _ in windows]
    kernels: list[dict[str, tuple[float, int]]] = [{} for _ in windows]
    for event in events:
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        ts = float(event["ts"])
        index = bisect.bisect_right(starts, ts) - 1
        if index < 0 or ts > windows[index][1]:
            continue  # a warm-up run's
        node = name.removesuffix("_kernel_time")
        seconds, calls = kernels[index].get(node, (0.0, 0))
        kernels[index][node] = (seconds + float(event["dur"]), calls + 1)
    return Runs(tuple(end - start for start, end in windows), tuple(kernels))


@dataclass(frozen=True)
class Settings:
    runs: int
    warmup: int
    threads: int | None  # None: ORT's default
    optimization: str  # disable | basic | extended | all (ORT's default)


@dataclass(frozen=True)
class NodeTime:
    """One kernel of the optimized graph: milliseconds in a typical run, calls per run."""

    name: str
    op_type: str
    module: str | None
    how: str
    members: tuple[str, ...]
    ms: float
    calls: int


@dataclass(frozen=True)
class ModuleTime:
    """One module: its own kernels (self) and with its descendants (inclusive), in
    milliseconds of a typical run (see ``aggregate``), with a 95 % interval of the median
    over runs (None below 6 runs)."""

    path: str
    cls: str
    self_ms: float
    inclusive_ms: float
    self_interval: tuple[float, float] | None
    inclusive_interval: tuple[float, float] | None
    calls: int  # its own kernel calls per run
    ops: tuple[tuple[str, float], ...]  # its own time by op type, heaviest first


@dataclass(frozen=True)
class Profile:
    model: str
    settings: Settings
    latency_ms: tuple[float, ...]  # each measured run, end to end
    kernel_ms: tuple[float, ...]  # each measured run, summed over its kernels
    attributed: float  # share of kernel time placed on a module below the root
    modules: tuple[ModuleTime, ...]  # the root first, then depth-first
    nodes: tuple[NodeTime, ...]  # heaviest first

    @property
    def total_ms(self) -> float:
        """Kernel milliseconds of a typical run: the root's inclusive time."""
        return self.modules[0].inclusive_ms if self.modules else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION, "model": self.model,
            "settings": vars(self.settings), "latency_ms": list(self.latency_ms),
            "kernel_ms": list(self.kernel_ms), "attributed": self.attributed,
            "modules": [{**vars(m), "self_interval": _pair(m.self_interval),
                         "inclusive_interval": _pair(m.inclusive_interval),
                         "ops": [list(op) for op in m.ops]} for m in self.modules],
            "nodes": [{**vars(n), "members": list(n.members)} for n in self.nodes],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Profile:
        return cls(
            data["model"], Settings(**data["settings"]), tuple(data["latency_ms"]),
            tuple(data["kernel_ms"]), data["attributed"],
            tuple(ModuleTime(**{**m, "self_interval": _tuple(m["self_interval"]),
                                "inclusive_interval": _tuple(m["inclusive_interval"]),
                                "ops": tuple((op, ms) for op, ms in m["ops"])})
                  for m in data["modules"]),
            tuple(NodeTime(**{**n, "members": tuple(n["members"])}) for n in data["nodes"]),
        )


def _pair(interval: tuple[float, float] | None) -> list[float] | None:
    return list(interval) if interval else None


def _tuple(interval: list[float] | None) -> tuple[float, float] | None:
    return (interval[0], interval[1]) if interval else None


def aggregate(model: str, settings: Settings, runs: Runs, placed: dict[str, Placement],
              classes: dict[str, str]) -> Profile:
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
            place = placed.get(node, _NOWHERE)
            where = place.module or ""
            own[where][run] += us / 1000
            ops[where][place.op_type][run] += us / 1000
            calls[where] += n
    inclusive: dict[str, list[float]] = defaultdict(lambda: [0.0] * count)
    for path, times in own.items():
        for above in ancestors(path):
            inclusive[above] = [a + b for a, b in zip(inclusive[above], times, strict=True)]
    totals = [sum(us for us, _ in kernels.values()) / 1000 for kernels in runs.kernels]
    typical = _typical(totals)
    modules = tuple(
        ModuleTime(path, classes.get(path, ""), typical(own[path]), typical(inclusive[path]),
                   median_interval(own[path]), median_interval(inclusive[path]),
                   calls[path] // max(count, 1),
                   tuple(sorted(((op, typical(t)) for op, t in ops[path].items()),
                                key=lambda item: -item[1])))
        for path in sorted(inclusive, key=lambda p: p.split(".") if p else []))
    placed_ms = sum(typical(times) for path, times in own.items() if path)
    total = typical(totals)
    # min: the two sums round differently when everything is placed (1.0000000000000002).
    return Profile(model, settings, tuple(us / 1000 for us in runs.latency_us), tuple(totals),
                   min(placed_ms / total, 1.0) if total else 0.0, modules,
                   _nodes(runs, placed, typical))


def _typical(totals: list[float]) -> Callable[[Sequence[float]], float]:
    """The mean over the middle half of the runs, ranked by ``totals``."""
    ranked = sorted(range(len(totals)), key=totals.__getitem__)
    cut = len(ranked) // 4
    kept = ranked[cut:len(ranked) - cut] or ranked
    return lambda values: sum(values[i] for i in kept) / len(kept) if kept else 0.0


def _nodes(runs: Runs, placed: dict[str, Placement],
           typical: Callable[[Sequence[float]], float]) -> tuple[NodeTime, ...]:
    names = {node for kernels in runs.kernels for node in kernels}
    timed = []
    for name in names:
        place = placed.get(name, _NOWHERE)
        per_run = [kernels.get(name, (0.0, 0)) for kernels in runs.kernels]
        timed.append(NodeTime(name, place.op_type, place.module, place.how,
                              place.members, typical([us / 1000 for us, _ in per_run]),
                              max(n for _, n in per_run)))
    return tuple(sorted(timed, key=lambda node: (-node.ms, node.name)))


def overlay(profile: Profile, exported: Sequence[Node], graph_id: str) -> dict[str, Any]:
    """Model Explorer node data: milliseconds per node of the exported graph, keyed by node
    name as its ONNX adapter names nodes. A kernel's time goes to the heavy nodes among
    those it computes (evenly), else to the one that produced its result."""
    ops = {node.name: node.op_type for node in exported}
    values: dict[str, float] = defaultdict(float)
    for node in profile.nodes:
        members = [m for m in node.members if m in ops]
        if not members:
            continue
        heavy = [m for m in members if ops[m] in HEAVY_OPS] or members[-1:]
        for member in heavy:
            values[member] += node.ms / len(heavy)
    return {graph_id: {
        "results": {name: {"value": round(ms, 6)} for name, ms in values.items()},
        "gradient": [{"stop": 0, "bgColor": "#fff7ec"}, {"stop": 1, "bgColor": "#d7301f"}],
    }}


@dataclass(frozen=True)
class Latency:
    """What the gate keeps of a profile: every run's latency, and per module its self and
    inclusive milliseconds of a typical run."""

    settings: Settings
    latency_ms: tuple[float, ...]
    attributed: float
    modules: dict[str, tuple[float, float]]  # path -> (self, inclusive)

    @classmethod
    def of(cls, found: Profile) -> Latency:
        return cls(found.settings, found.latency_ms, found.attributed,
                   {m.path: (m.self_ms, m.inclusive_ms) for m in found.modules})

    def to_json(self) -> dict[str, Any]:
        return {"settings": vars(self.settings), "latency_ms": list(self.latency_ms),
                "attributed": self.attributed,
                "modules": {path: list(times) for path, times in self.modules.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Latency:
        return cls(Settings(**data["settings"]), tuple(data["latency_ms"]), data["attributed"],
                   {path: (times[0], times[1]) for path, times in data["modules"].items()})


@dataclass(frozen=True)
class ModuleDelta:
    """How a module's own time moved; ``count`` modules alike folded into one row."""

    where: str
    before_ms: float
    after_ms: float
    count: int = 1

    @property
    def delta_ms(self) -> float:
        return self.after_ms - self.before_ms


def module_deltas(before: Latency, after: Latency, limit: int = 5) -> list[ModuleDelta]:
    """The modules whose own time moved most, repeated layers folded (their times summed):
    ``encoder.layer.{0..11}.intermediate.dense`` is one row."""
    groups: dict[str, list[str]] = defaultdict(list)
    for path in {*before.modules, *after.modules}:
        groups[pattern(path)].append(path)
    rows = []
    for paths in groups.values():
        was = sum(before.modules.get(p, (0.0, 0.0))[0] for p in paths)
        now = sum(after.modules.get(p, (0.0, 0.0))[0] for p in paths)
        rows.append(ModuleDelta(folded_name(sorted(paths)), was, now, len(paths)))
    rows.sort(key=lambda row: (-abs(row.delta_ms), row.where))
    return rows[:limit]
