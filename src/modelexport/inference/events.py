"""ONNX Runtime's profile: the trace events it writes, split into measured runs. Pure.

As onnxruntime 1.32 writes them: per-node events have ``cat == "Node"`` and the name
``<node>_kernel_time``, ``model_run`` events span each run, and the profiler keeps at most
``EVENT_CAP`` events, saying so only in its log.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
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
