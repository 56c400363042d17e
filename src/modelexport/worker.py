"""One model's measurement, run in its own process by the runner.

    python -m modelexport.worker JOB.json RESULT.json STAGE

JOB holds the model spec; RESULT receives the measurement; STAGE holds what the worker is
doing now, for the runner's progress line. Loading happens once (timed apart),
then one validated warm-up export, then ``repeats`` measured exports of the loaded model.
A crash, an OOM kill or a hang leaves no RESULT, and the runner records that as a failure.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from modelexport import metadata
from modelexport.inputs import InputSpec
from modelexport.sources import Source

GATED_PHASES = ("inputs", "trace", "export", "project", "write", "validate")


def measure(job: dict[str, Any], stage: Callable[[str], object]) -> dict[str, Any]:
    from modelexport.htp.export import ExportOptions, export_module
    from modelexport.sources import load

    source = Source(**job["source"])
    inputs = tuple(
        InputSpec(i["name"], tuple(i["shape"]), i["dtype"], i["low"], i["high"])
        for i in job["inputs"]
    )
    options = ExportOptions(exporter=job["exporter"], opset=job["opset"], inputs=inputs,
                            seed=source.seed)
    stage("loading")
    started = time.perf_counter()
    loaded = load(source)
    load_s = time.perf_counter() - started - loaded.download_s

    with tempfile.TemporaryDirectory(prefix="modelexport-worker-") as tmp:
        output = Path(tmp) / f"{job['name']}.onnx"
        stage("warm-up export (validated)")
        warmup = export_module(loaded.model, loaded.config, output,
                               replace(options, validate=True), source)
        samples: dict[str, list[float]] = {phase: [] for phase in (*GATED_PHASES, "total")}
        for run in range(1, job["repeats"] + 1):
            stage(f"export {run}/{job['repeats']}")
            result = export_module(loaded.model, loaded.config, output, options, source)
            for phase in GATED_PHASES:
                samples[phase].append(result.sidecar["timings"][phase])
            samples["total"].append(sum(result.sidecar["timings"][p] for p in GATED_PHASES))
        onnx_bytes = sum(p.stat().st_size for p in Path(tmp).iterdir()
                         if not p.name.endswith(".json"))
    sidecar = warmup.sidecar
    return {
        "status": "ok",
        "download_s": loaded.download_s,
        "load_s": load_s,
        "samples": samples,
        "peak_rss_bytes": peak_rss_bytes(),
        "onnx_bytes": onnx_bytes,
        "exporter": sidecar["export"]["exporter"],
        "opset": sidecar["export"]["opset"],
        "fallback": sidecar["export"]["fallback"],
        "statistics": sidecar["statistics"],
        "schema_valid": not metadata.schema_errors(sidecar, "hierarchy.schema.json"),
        "validation": sidecar["validation"],
    }


def peak_rss_bytes() -> int:
    """This process's own peak resident memory.

    On Linux, VmHWM: the high-water mark of this process's memory map. ``ru_maxrss`` there
    reports the parent's RSS at the fork when that was larger (measured: a child using
    13 MB read 1 GB under a 1 GB parent). Elsewhere ``ru_maxrss``, which macOS gives in
    bytes and the other systems in KiB.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def main(argv: list[str]) -> NoReturn:
    job_file, result_file = Path(argv[0]), Path(argv[1])
    stage_file = Path(argv[2])
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    job = json.loads(job_file.read_text())
    try:
        result = measure(job, stage_file.write_text)
    except Exception as exc:  # reported as this model's failure, with its own words
        result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}".strip()[:2000]}
    metadata.write_json(result_file, result)
    # Skip the interpreter's teardown: with torch and onnxruntime loaded it took 1.2 s
    # here, once per model, and the result is already written (atomically).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
