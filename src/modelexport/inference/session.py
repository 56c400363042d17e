"""Run an exported model in ONNX Runtime with its profiler on, and attribute the time.

What runs is what users deploy: the CPU provider at ORT's default optimization level
(``all``) unless told otherwise. The session saves the graph it optimized, which is how
``attribute`` follows fused and renamed nodes back to the exported ones.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from modelexport import inputs, onnxfile, tags
from modelexport.errors import ModelExportError, UsageError, describe
from modelexport.inference import aggregate, attribute, events
from modelexport.inference.events import EVENT_CAP
from modelexport.inference.records import OPTIMIZATIONS, Profile, Settings
from modelexport.inputs import InputSpec
from modelexport.tags import Tagged

_WEIGHTS = "weights.bin"  # of the optimized graph ORT saves, beside it
_NODE_MEMORY = "node-memory.csv"  # what ORT says each kernel allocated (``events.temporaries``)
INPUT_LIMIT = 1024 * 10**6  # bytes of inputs a profile makes, unless told otherwise
_BITS = dict(onnxfile.DTYPES.values())  # element type -> bits per element
_ROOM = 1 << 20  # bytes free in the temporary folder below which a failed session says so


class ProfileFailed(ModelExportError):
    """ONNX Runtime refused the model or failed while running it."""


def feeds(model: Tagged, overrides: list[InputSpec], seed: int = 0,
          limit_bytes: int = INPUT_LIMIT) -> dict[str, Any]:
    """Inputs for every graph input: ``overrides`` by name, else as the export fed them,
    else the graph's own static shape; UsageError beyond ``limit_bytes`` in all (a shape
    declared in a file can ask for terabytes)."""
    wanted = {sig.name: sig for sig in model.graph.inputs}
    unknown = [spec.name for spec in overrides if spec.name not in wanted]
    if unknown:
        raise UsageError(f"--input {unknown[0]}: not an input of {model.path.name} "
                         f"({', '.join(wanted) or 'it takes none'})")
    given = {spec.name: spec for spec in (*model.inputs, *overrides)}
    specs = []
    for name, sig in wanted.items():
        if name in given:
            specs.append(replace(given[name], dtype=sig.dtype))  # the graph's type rules
        elif sig.shape is not None and all(isinstance(d, int) for d in sig.shape):
            specs.append(InputSpec(name, tuple(int(d) for d in sig.shape), sig.dtype))
        else:
            raise UsageError(f"{model.path.name}: input {name!r} has no fixed shape and no "
                             f"sidecar records one: pass --input {name}=SHAPE")
    total = sum(_bytes(spec) for spec in specs)
    if total > limit_bytes:
        shapes = ", ".join(f"{s.name}={'x'.join(map(str, s.shape))}" for s in specs)
        raise UsageError(f"{model.path.name}: its inputs ({shapes}) take {_mb(total)} MB; "
                         f"at most {_mb(limit_bytes)} MB (--max-input-mb)")
    return inputs.arrays(specs, seed)


def _mb(size: float) -> str:
    """Bytes as MB, whole from 1 MB, else to two significant digits (not a bare 0)."""
    return f"{size / 1e6:,.0f}" if size >= 1e6 else f"{size / 1e6:.2g}"


def _bytes(spec: InputSpec) -> int:
    bits = _BITS.get(spec.dtype, 64)
    return math.prod(spec.shape) * max(int(bits), 8) // 8


def run(path: Path, settings: Settings, overrides: list[InputSpec] | None = None,
        seed: int = 0, input_limit: int = INPUT_LIMIT, timeout_s: float | None = None
        ) -> tuple[Profile, Tagged]:
    """Profile ``settings.runs`` runs after ``settings.warmup`` unmeasured ones; stopped
    (ProfileFailed) once they took ``timeout_s`` seconds in all."""
    with tempfile.TemporaryDirectory(prefix="modelexport-profile-") as tmp:
        ready = _prepare(path, settings, overrides or [], seed, input_limit, Path(tmp))
        _runs([ready] * (settings.warmup + settings.runs), timeout_s)
        return _profile(ready, settings), ready.model


def run_alternating(paths: list[Path], settings: Settings, timeout_s: float | None = None,
                    overrides: list[list[InputSpec]] | None = None) -> list[Profile]:
    """Profile several exports (a pull request's base and head) side by side: every
    session created first, each warmed up, then their measured runs in turns, one run of
    each, reversing the order every round (ABBA). Run ``i`` of one export is then the
    neighbour of run ``i`` of the other: a load that comes and goes hits both alike, and
    the verdict compares them in pairs. ``overrides``: each export's own, as ``run``
    takes them (a decoder's phase)."""
    with tempfile.TemporaryDirectory(prefix="modelexport-profile-") as tmp:
        ready = []
        for index, path in enumerate(paths):
            (Path(tmp) / str(index)).mkdir()
            ready.append(_prepare(path, settings, overrides[index] if overrides else [], 0,
                                  INPUT_LIMIT, Path(tmp) / str(index)))
        schedule = [one for one in ready for _ in range(settings.warmup)]
        for round_ in range(settings.runs):
            schedule += ready if round_ % 2 == 0 else ready[::-1]
        _runs(schedule, timeout_s)
        return [_profile(one, settings) for one in ready]


@dataclass(frozen=True)
class _Ready:
    """An export with its session created and its inputs made: ready to run."""

    path: Path
    model: Tagged
    feed: dict[str, Any]
    session: Any
    optimized: onnxfile.Skeleton
    folder: Path  # the session's own, where ORT writes its files


def _prepare(path: Path, settings: Settings, overrides: list[InputSpec], seed: int,
             input_limit: int, tmp: Path) -> _Ready:
    model = tags.read(path, whole=True)
    feed = feeds(model, overrides, seed, input_limit)
    session = _session(path, settings, tmp)
    optimized = onnxfile.read(tmp / "optimized.onnx")
    # Each run records at least one event per kernel and two of its own.
    most = EVENT_CAP // (len(optimized.nodes) + 2) - settings.warmup
    if settings.runs > most:
        raise UsageError(f"{settings.runs} runs of {path.name}: onnxruntime's profiler "
                         f"keeps {EVENT_CAP:,} events, enough for {max(most, 0)} runs "
                         f"after {settings.warmup} warm-up")
    return _Ready(path, model, feed, session, optimized, tmp)


def _profile(ready: _Ready, settings: Settings) -> Profile:
    """What the session's profiler recorded, attributed to the modules of the export."""
    trace = Path(ready.session.end_profiling())
    try:
        text = trace.read_text(encoding="utf-8")
        found = events.trace_events(text)
        # Loops and branches record more events a run than the graph has kernels.
        runs = events.runs_of(found, settings.warmup, settings.runs)
    except ValueError as exc:
        raise ProfileFailed(f"{ready.path.name}: onnxruntime's profile {trace.name}: "
                            f"{describe(exc)} (its profiler keeps {EVENT_CAP:,} events: "
                            f"profile fewer runs if it ran out)") from exc
    model = ready.model
    placed = attribute.attribute(model.graph.nodes, model.by_node, ready.optimized.nodes)
    stats = events.kernel_stats(text)
    scratch = _temporaries(ready.folder / _NODE_MEMORY, stats)
    stats = {name: replace(one, temporary_bytes=scratch.get(name, 0))
             for name, one in stats.items()}
    return aggregate.aggregate(ready.path.name, settings, runs, placed, model.classes, stats)


def _temporaries(written: Path, kernels: Collection[str]) -> dict[str, int]:
    """The temporary bytes of each of ``kernels``, as ORT wrote them after the first run;
    none where this ORT wrote no such file."""
    try:
        text = written.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    return events.temporaries(text, kernels)


def _runs(schedule: list[_Ready], timeout_s: float | None) -> None:
    """One run of each export in ``schedule``, in order, in a thread of their own: this one
    stays free to stop them (ORT checks between kernels, so a loop of a trillion iterations
    stops too) after ``timeout_s`` seconds in all, or when this process is told to stop
    (KeyboardInterrupt, which the SIGTERM handler raises)."""
    import onnxruntime as ort

    options = ort.RunOptions()
    options.log_severity_level = 4  # a failed or stopped run is raised to us, not logged
    failures: list[tuple[_Ready, Exception]] = []
    # Not Thread.join: interrupted (KeyboardInterrupt), it can leave a running thread
    # reported as stopped, and the process would exit under ORT's feet (an abort).
    done = threading.Event()

    def runs() -> None:
        one = None
        try:
            for one in schedule:
                one.session.run(None, one.feed, options)
        except Exception as exc:  # onnxruntime raises its own types
            assert one is not None
            failures.append((one, exc))
        finally:
            done.set()

    deadline = time.monotonic() + timeout_s if timeout_s else math.inf
    threading.Thread(target=runs, name="modelexport-profile", daemon=True).start()
    try:
        while not done.wait(min(0.2, max(deadline - time.monotonic(), 0.0))) \
                and time.monotonic() < deadline:
            pass
    finally:
        if not done.is_set():
            options.terminate = True
            done.wait()
    if not failures:
        return
    failed, exc = failures[0]
    if time.monotonic() >= deadline:
        raise ProfileFailed(f"{failed.path.name}: stopped after {timeout_s:g} s (--timeout)")
    shapes = {name: list(array.shape) for name, array in failed.feed.items()}
    raise ProfileFailed(f"{failed.path.name}: onnxruntime fails at inputs {shapes}: "
                        f"{describe(exc)}") from exc


def level(optimization: str) -> Any:
    """ONNX Runtime's graph optimization level of that name (``OPTIMIZATIONS``)."""
    import onnxruntime as ort

    levels = ort.GraphOptimizationLevel
    return dict(zip(OPTIMIZATIONS, (levels.ORT_DISABLE_ALL, levels.ORT_ENABLE_BASIC,
                                    levels.ORT_ENABLE_EXTENDED, levels.ORT_ENABLE_ALL),
                    strict=True))[optimization]


def _session(path: Path, settings: Settings, tmp: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = level(settings.optimization)
    options.enable_profiling = True
    options.profile_file_prefix = str(tmp / "ort")
    options.optimized_model_filepath = str(tmp / "optimized.onnx")
    # Only the saved graph's structure is read back, so its weights go to a file named
    # beside it, and that name to the null device: ORT has no option to save a graph without
    # its weights, and writing them took longer than creating the session itself
    # (docs/performance.md, "Measured choices"). Where no link can be made they are
    # written and never read.
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                     _WEIGHTS)
    with contextlib.suppress(OSError, NotImplementedError):
        (tmp / _WEIGHTS).symlink_to(os.devnull)
    options.add_session_config_entry("session.collect_node_memory_stats_to_file",
                                     str(tmp / _NODE_MEMORY))
    options.log_severity_level = 3  # its warning about saving a layout-optimized graph
    if settings.threads:
        options.intra_op_num_threads = settings.threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types
        if shutil.disk_usage(tmp).free < _ROOM:  # it says only "serialization failed"
            raise ProfileFailed(f"{path.name}: no room left in the temporary folder {tmp} "
                                f"(TMPDIR) for the optimized graph: {describe(exc)}") from exc
        raise ProfileFailed(f"{path.name}: onnxruntime refuses the model: "
                            f"{describe(exc)}") from exc
