"""Run each model of a manifest in its own process, so that one crash, OOM kill or hang is
that model's failure and the others still run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from modelexport.manifest import ModelSpec


def job_for(spec: ModelSpec) -> dict[str, Any]:
    """What the worker needs, as JSON."""
    source = spec.source
    return {
        "name": spec.name,
        "source": {
            "kind": source.kind, "id": source.id, "revision": source.revision,
            "path": source.path, "model_type": source.model_type, "config": source.config,
            "seed": source.seed, "model_class": source.model_class,
            "trust_remote_code": source.trust_remote_code,
        },
        "inputs": [
            {"name": i.name, "shape": list(i.shape), "dtype": i.dtype, "low": i.low,
             "high": i.high}
            for i in spec.inputs
        ],
        "exporter": spec.exporter,
        "opset": spec.opset,
        "repeats": spec.repeats,
    }


def run_one(spec: ModelSpec, workdir: Path) -> dict[str, Any]:
    """Measure one model in a child process; always returns a record, never raises."""
    job_file = workdir / f"{spec.name}.job.json"
    result_file = workdir / f"{spec.name}.result.json"
    log_file = workdir / f"{spec.name}.log"
    job_file.write_text(json.dumps(job_for(spec)))
    started = time.perf_counter()
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelexport.worker", str(job_file), str(result_file)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout kills all of it
        )
        try:
            proc.wait(timeout=spec.timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return _failure(f"timed out after {spec.timeout:g} s", started)
        except BaseException:
            _kill(proc)  # Ctrl-C or SIGTERM: leave no orphan behind
            raise
    if result_file.is_file():
        record = json.loads(result_file.read_text())
        record["wall_s"] = time.perf_counter() - started
        return record
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return _failure(f"killed by {name}{hint}", started)
    tail = log_file.read_text(errors="replace").strip().splitlines()[-1:] or [""]
    return _failure(f"exited with code {proc.returncode}: {tail[0][:300]}", started)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have just exited
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _failure(error: str, started: float) -> dict[str, Any]:
    return {"status": "failed", "error": error, "wall_s": time.perf_counter() - started}


def run(specs: list[ModelSpec], progress: Callable[[str], None]
        ) -> Iterator[tuple[ModelSpec, dict[str, Any]]]:
    """Yield (spec, record) as each model finishes, so the caller can save as it goes."""
    with tempfile.TemporaryDirectory(prefix="modelexport-run-") as tmp:
        for index, spec in enumerate(specs, 1):
            progress(f"[{index}/{len(specs)}] {spec.name}: exporting "
                     f"(1 warm-up + {spec.repeats} measured, timeout {spec.timeout:g} s)")
            record = run_one(spec, Path(tmp))
            outcome = ("ok" if record["status"] == "ok"
                       else f"FAILED: {record['error']}")
            progress(f"[{index}/{len(specs)}] {spec.name}: {outcome} "
                     f"({record['wall_s']:.1f} s)")
            yield spec, record
