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
from typing import Any, NamedTuple

from modelexport.manifest import ModelSpec

POLL_S = 0.5


class Progress(NamedTuple):
    """Where a run stands: model ``index`` of ``count``, its stage, seconds so far."""

    index: int
    count: int
    name: str
    stage: str
    elapsed: float
    done: bool = False

    def line(self) -> str:
        return f"[{self.index}/{self.count}] {self.name}: {self.stage} ({self.elapsed:.1f} s)"


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


def run_one(spec: ModelSpec, workdir: Path, on_stage: Callable[[str, float], None]
            ) -> dict[str, Any]:
    """Measure one model in a child process; always returns a record, never raises.
    ``on_stage(stage, elapsed)`` is called about every POLL_S seconds while it runs."""
    job_file = workdir / f"{spec.name}.job.json"
    result_file = workdir / f"{spec.name}.result.json"
    stage_file = workdir / f"{spec.name}.stage"
    log_file = workdir / f"{spec.name}.log"
    job_file.write_text(json.dumps(job_for(spec)))
    started = time.perf_counter()
    # The worker rewrites its stage file in place, so a read can catch it empty: keep the
    # last stage seen rather than flicker back to "starting".
    stage = "starting"
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelexport.worker", str(job_file), str(result_file),
             str(stage_file)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout kills all of it
        )
        try:
            while proc.poll() is None:
                elapsed = time.perf_counter() - started
                if elapsed > spec.timeout:
                    _kill(proc)
                    return _failure(f"timed out after {spec.timeout:g} s", started)
                stage = _read(stage_file) or stage
                on_stage(stage, elapsed)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=min(POLL_S, max(spec.timeout - elapsed, 0.01)))
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


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have just exited
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _failure(error: str, started: float) -> dict[str, Any]:
    return {"status": "failed", "error": error, "wall_s": time.perf_counter() - started}


def run(specs: list[ModelSpec], progress: Callable[[Progress], None]
        ) -> Iterator[tuple[ModelSpec, dict[str, Any]]]:
    """Yield (spec, record) as each model finishes, so the caller can save as it goes."""
    count = len(specs)
    with tempfile.TemporaryDirectory(prefix="modelexport-run-") as tmp:
        for index, spec in enumerate(specs, 1):
            record = run_one(spec, Path(tmp), lambda stage, elapsed, i=index, s=spec:
                             progress(Progress(i, count, s.name, stage, elapsed)))
            outcome = ("ok" if record["status"] == "ok"
                       else f"FAILED: {record['error']}")
            progress(Progress(index, count, spec.name, outcome, record["wall_s"], done=True))
            yield spec, record
