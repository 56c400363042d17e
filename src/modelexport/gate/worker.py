"""One model's measurement, run in its own process by the runner.

    python -m modelexport.gate.worker JOB.json RESULT.json STAGE PARENT_PID

JOB holds the ``Job``; RESULT receives the ``Measured`` or ``Failed`` record; STAGE holds
what the worker is doing now, for the runner's progress line. Loading happens once (timed
apart), then one validated warm-up export, then ``repeats`` measured exports of the loaded
model. A crash, an OOM kill or a hang leaves no RESULT, and the runner records that as a
failure.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import resource
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from modelexport import jsonfile, structure
from modelexport.errors import ModelExportError
from modelexport.gate.latency import Latency
from modelexport.gate.records import Failed, Job, Measured, ModelResult
from modelexport.htp.options import GATED_PHASES, TOTAL, ExportOptions
from modelexport.inference.records import Settings

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def measure(job: Job, stage: Callable[[str], object], scratch: Path | None = None) -> Measured:
    """``scratch``: where the exports go (the runner's folder, which it removes whatever
    becomes of this process)."""
    from modelexport.htp.export import export_module
    from modelexport.sources import load

    options = ExportOptions(exporter=job.exporter, opset=job.opset, inputs=job.inputs,
                            seed=job.source.seed, dynamic=job.dynamic)
    stage("loading")
    started = time.perf_counter()
    loaded = load(job.source)
    load_s = time.perf_counter() - started - loaded.download_s

    with tempfile.TemporaryDirectory(prefix="modelexport-worker-", dir=scratch) as tmp:
        output = Path(tmp) / f"{job.name}.onnx"
        stage("warm-up export (validated)")
        warmup = export_module(loaded.model, loaded.config, output,
                               replace(options, validate=True), job.source,
                               examples=loaded.examples)
        summary = structure.of_file(output)  # before the timed exports write over it
        samples: dict[str, list[float]] = {phase: [] for phase in (*GATED_PHASES, TOTAL)}
        for run in range(1, job.repeats + 1):
            stage(f"export {run}/{job.repeats}")
            timings = export_module(loaded.model, loaded.config, output, options, job.source,
                                    examples=loaded.examples).sidecar.timings
            for phase in GATED_PHASES:
                samples[phase].append(timings[phase])
            samples[TOTAL].append(sum(timings[p] for p in GATED_PHASES))
        onnx_bytes = sum(p.stat().st_size for p in Path(tmp).iterdir()
                         if not p.name.endswith(".json"))
        latency = _profile(output, job.inference, stage) if job.inference else None
    record = warmup.sidecar
    return Measured(
        samples=samples, load_s=load_s, download_s=loaded.download_s,
        peak_rss_bytes=peak_rss_bytes(), onnx_bytes=onnx_bytes,
        exporter=record.export.exporter, opset=record.export.opset,
        fallback=record.export.fallback, statistics=record.statistics,
        schema_valid=not record.schema_errors(), validation=record.validation,
        structure=summary, inference=latency,
    )


def _profile(output: Path, settings: Settings, stage: Callable[[str], object]) -> Latency:
    """The export in onnxruntime, as ``modelexport profile`` runs it."""
    from modelexport.inference import session

    stage(f"inference {settings.runs} runs")
    try:
        found, _ = session.run(output, settings)
    except ModelExportError as exc:
        raise ModelExportError(f"inference profile: {exc}") from exc
    return Latency.of(found)


def peak_rss_bytes() -> int:
    """This process's own peak resident memory.

    On Linux, VmHWM: the high-water mark of this process's memory map. ``ru_maxrss`` there
    reports the parent's RSS at the fork when that was larger than the child's own peak
    (docs/performance.md, "Measured choices"). Elsewhere ``ru_maxrss``, which macOS gives in
    bytes and the other systems in KiB.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux), so a runner killed
    with SIGKILL leaves no worker running on; where that is not available, nothing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)


def main(argv: list[str]) -> NoReturn:
    job_file, result_file = Path(argv[0]), Path(argv[1])
    stage_file = Path(argv[2])
    die_with_parent(int(argv[3]))
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    job = Job.from_json(json.loads(job_file.read_text()))
    result: ModelResult
    try:
        result = measure(job, stage_file.write_text, result_file.parent)
    except Exception as exc:  # reported as this model's failure, with its own words
        where = f"{job.where}: " if job.where else ""
        result = Failed(f"{where}{type(exc).__name__}: {exc}".strip()[:2000])
    jsonfile.write_atomic(result_file, result.to_json())
    # Skip the interpreter's teardown: with torch and onnxruntime loaded it takes a second
    # or more, once per model, and the result is already written (atomically).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
