"""ONNX Runtime's profile: the trace events it writes, split into measured runs. Pure.

As onnxruntime 1.32 writes them: per-node events have ``cat == "Node"`` and the name
``<node>_kernel_time``, ``model_run`` events span each run, and the profiler keeps at most
``EVENT_CAP`` events, saying so only in its log.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

EVENT_CAP = 1_000_000  # docs/profile.md, "What a profile costs", last paragraph
_ARGS = ',"args" :'  # where each trace event starts its statistics


@dataclass(frozen=True)
class Runs:
    """The profiler's events, per measured run: kernel microseconds and calls per node."""

    latency_us: tuple[float, ...]  # each run, end to end
    kernels: tuple[dict[str, tuple[float, int]], ...]  # node -> (microseconds, calls)


def trace_events(text: str) -> list[dict[str, Any]]:
    """The events of ORT's profile, a Chrome-trace JSON array, each without its ``args``.

    ORT writes one event per line, ``args`` last, and the args (per-thread and memory
    statistics) are most of the bytes: cutting them off before parsing reads a trace a few
    times faster (docs/performance.md, "Measured choices"). A quote inside a
    JSON string is escaped, so the marker cannot occur inside a node's name. A trace laid
    out otherwise is parsed whole; one that is not JSON raises ``ValueError``."""
    cut_lines = []
    for line in text.splitlines():
        line = line.strip().rstrip(",")
        if line in ("[", "]", ""):
            continue
        cut = line.find(_ARGS)
        cut_lines.append(line[:cut] + "}" if cut > 0 else line)
    try:  # as one array: a third of the time of parsing line by line
        events = json.loads(f"[{','.join(cut_lines)}]")
    except ValueError:
        return _whole(text)
    if not events or not all(isinstance(event, dict) for event in events):
        return _whole(text)
    return events


@dataclass(frozen=True)
class KernelStats:
    """What ORT's profiler says of one kernel besides its time, in the first run."""

    shapes: str  # ``float[1,8,384] float[384,384] -> float[1,8,384]``
    output_bytes: int  # the tensors it produced
    arena_peak_bytes: int  # the most the session's arena had in use so far
    temporary_bytes: int = 0  # what it allocated for itself and freed (``temporaries``)


def kernel_stats(text: str) -> dict[str, KernelStats]:
    """Each kernel's statistics in the first run of ORT's profile, from the ``args`` that
    ``trace_events`` leaves out: parsed for one run's events only, which ends where the
    first ``model_run`` event is written."""
    found: dict[str, KernelStats] = {}
    end = text.find('"model_run"')  # the first run's lines only: splitting all took 6 ms of 8
    for line in text[:end if end >= 0 else len(text)].splitlines():
        if "_kernel_time" not in line:
            continue
        try:
            event = json.loads(line.strip().rstrip(","))
        except ValueError:
            continue
        args = event.get("args") if isinstance(event, dict) else None
        name = str(event.get("name", "")).removesuffix("_kernel_time") if args else ""
        if isinstance(args, dict) and name and name not in found:
            found[name] = KernelStats(
                f"{_shapes(args.get('input_type_shape'))} -> "
                f"{_shapes(args.get('output_type_shape'))}",
                _count(args.get("output_size")), _count(args.get("mem_in_use_peak")))
    return found


def temporaries(text: str, kernels: Collection[str]) -> dict[str, int]:
    """Each of ``kernels``' temporary allocations in a run: the scratch memory it allocated
    for itself, besides its outputs. From the file ONNX Runtime writes after a session's
    first run when its option ``session.collect_node_memory_stats_to_file`` names one: CSV
    rows ``name,input_sizes,initializers_sizes,total_dynamic_sizes,total_temp_allocations``,
    the name followed by ``_`` and a number of ORT's own (1.32; a name that is a kernel's
    as written is taken as it is). A row it cannot read, or of no such kernel, is left out.
    """
    found: dict[str, int] = {}
    for line in text.splitlines():
        cells = line.rsplit(",", 4)  # a node's name may hold a comma; the counts never do
        if line.startswith("#") or len(cells) != 5 or not cells[4].strip().isdigit():
            continue
        name = cells[0] if cells[0] in kernels else cells[0].rpartition("_")[0]
        if name in kernels:
            found[name] = int(cells[4])
    return found


def _count(value: Any) -> int:
    """A byte count as ORT writes it (a decimal string); 0 where it is not one."""
    return int(value) if isinstance(value, str) and value.isdigit() else 0


def _shapes(listed: Any) -> str:
    """``[{"float": [1, 8]}, {"int64": []}]`` as ``float[1,8] int64[]``."""
    if not isinstance(listed, list):
        return "?"
    return " ".join(f"{dtype}[{','.join(map(str, dims)) if isinstance(dims, list) else '?'}]"
                    for entry in listed if isinstance(entry, dict)
                    for dtype, dims in entry.items())


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
