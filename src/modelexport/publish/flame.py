"""A profile for flame-graph viewers: a typical run as Chrome trace events (Perfetto,
speedscope and chrome://tracing open them), laid out as the module tree, and as collapsed
stacks (speedscope, flamegraph.pl, inferno). Pure.

ONNX Runtime runs a module's kernels interleaved with other modules', so the timeline is
not the run's own order: each module is one slice as long as its kernels and its
children's together (milliseconds of a typical run, ``aggregate``), its own kernels first,
then its children in module order. A viewer's total for a module is then the profile's
inclusive time of that module.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from modelexport import modulepath
from modelexport.inference.records import NodeTime, Profile

ROOT = "(root)"


def frames(path: str) -> tuple[str, ...]:
    """The frames a module stands under: its names from the root down, an index joined to
    the container before it (``encoder.layer.0.attention``: encoder, layer.0, attention),
    as the layers of a stack are read."""
    found: list[str] = []
    for part in modulepath.parts(path):
        if found and part.isdigit():
            found[-1] += f".{part}"
        else:
            found.append(part)
    return tuple(found)


@dataclass
class _Frame:
    name: str
    kernels: list[NodeTime] = field(default_factory=list)
    children: dict[str, _Frame] = field(default_factory=dict)
    cls: str = ""

    def ticks(self) -> int:
        """Its kernels' and its children's time in ``TICK``s."""
        return (sum(_ticks(k) for k in self.kernels)
                + sum(c.ticks() for c in self.children.values()))


# Trace times are microseconds as JSON numbers. Counted in 1/1024 us (about a nanosecond),
# every time and sum is exact in binary floating point: a child's end is its parent's to
# the bit, which viewers need to nest slices (speedscope left decimal microseconds
# "still open at end of profile").
TICK = 1024


def _ticks(kernel: NodeTime) -> int:
    return round(kernel.ms * 1000 * TICK)


def _ns(kernel: NodeTime) -> int:
    return round(kernel.ms * 1e6)


def _tree(profile: Profile) -> _Frame:
    root = _Frame(ROOT)

    def at(path: str) -> _Frame:
        frame = root
        for name in frames(path):
            frame = frame.children.setdefault(name, _Frame(name))
        return frame

    for module in sorted(profile.modules, key=lambda m: modulepath.natural_order(m.path)):
        at(module.path).cls = module.cls
    for kernel in profile.nodes:
        at(kernel.module or "").kernels.append(kernel)
    return root


def trace(profile: Profile) -> dict[str, Any]:
    """Chrome trace-event JSON: module slices (``cat`` module, args: path and class) with
    their kernels inside (``cat`` kernel, args: node, op type, input and output shapes,
    calls per run, and the other modules a fused kernel absorbed), on one thread; times in
    microseconds."""
    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": 1, "tid": 1,
         "args": {"name": f"modelexport profile: {profile.model}"}},
        {"name": "thread_name", "ph": "M", "pid": 1, "tid": 1,
         "args": {"name": "a typical run, by module"}},
    ]

    def place(frame: _Frame, path: str, start: int) -> int:
        length = frame.ticks()
        if length == 0:
            return start
        events.append(_slice(frame.name, "module", start, length,
                             {"module": path or ROOT, "class": frame.cls}))
        at = start
        for kernel in frame.kernels:
            if _ticks(kernel):
                events.append(_slice(kernel.op_type, "kernel", at, _ticks(kernel), {
                    "node": kernel.name, "op_type": kernel.op_type, "shapes": kernel.shapes,
                    "calls": kernel.calls, "absorbed": list(kernel.absorbed)}))
                at += _ticks(kernel)
        for name, child in frame.children.items():
            at = place(child, f"{path}.{name}" if path else name, at)
        return start + length

    place(_tree(profile), "", 0)
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def _slice(name: str, category: str, start: int, length: int,
           args: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "cat": category, "ph": "X", "pid": 1, "tid": 1,
            "ts": start / TICK, "dur": length / TICK, "args": args}


def collapsed(profile: Profile) -> str:
    """Collapsed stacks, one line per module and op type: ``(root);encoder;layer.0;
    attention;MatMul 123456``, the weight in nanoseconds of a typical run (the format takes
    whole numbers)."""
    lines: list[str] = []

    def walk(frame: _Frame, stack: list[str]) -> None:
        here = [*stack, _frame_name(frame.name)]
        by_op: dict[str, int] = defaultdict(int)
        for kernel in frame.kernels:
            by_op[kernel.op_type] += _ns(kernel)
        lines.extend(f"{';'.join([*here, _frame_name(op)])} {ns}"
                     for op, ns in by_op.items() if ns)
        for child in frame.children.values():
            walk(child, here)

    walk(_tree(profile), [])
    return "\n".join(lines) + "\n"


def _frame_name(name: str) -> str:
    """A name as one frame of a collapsed stack: ';' separates frames, the last space the
    weight and a line end the stack, so none may stand in a name from the model."""
    return _BLANK.sub("_", name.replace(";", ":")) or "_"


_BLANK = re.compile(r"[\s\x00-\x1f\x7f]")
