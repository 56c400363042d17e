"""Run each model of a manifest in its own process, so that one crash, OOM kill or hang is
that model's failure and the others still run; save the results after each model."""

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
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from modelexport.gate import results
from modelexport.gate.manifest import Manifest, ModelSpec
from modelexport.gate.records import Failed, Job, ModelResult, model_result_from_json
from modelexport.gate.results import PullRequest, Results, Shard

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


def job_for(spec: ModelSpec, manifest: Path | None = None) -> Job:
    """What the worker needs of a manifest entry."""
    where = f"{manifest}:{spec.line}" if manifest else ""
    return Job(spec.name, spec.source, spec.inputs, spec.exporter, spec.opset, spec.repeats,
               spec.dynamic, where)


def run_one(spec: ModelSpec, workdir: Path, on_stage: Callable[[str, float], None],
            manifest: Path | None = None) -> ModelResult:
    """Measure one model in a child process; always returns a record, never raises.
    ``on_stage(stage, elapsed)`` is called about every POLL_S seconds while it runs."""
    job_file = workdir / f"{spec.name}.job.json"
    result_file = workdir / f"{spec.name}.result.json"
    stage_file = workdir / f"{spec.name}.stage"
    log_file = workdir / f"{spec.name}.log"
    job_file.write_text(json.dumps(job_for(spec, manifest).to_json()))
    started = time.perf_counter()
    # The worker rewrites its stage file in place, so a read can catch it empty: keep the
    # last stage seen rather than flicker back to "starting".
    stage = "starting"
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelexport.gate.worker", str(job_file), str(result_file),
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
        record = model_result_from_json(json.loads(result_file.read_text()))
        return replace(record, wall_s=time.perf_counter() - started)
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


def _failure(error: str, started: float) -> Failed:
    return Failed(error, time.perf_counter() - started)


def run(specs: list[ModelSpec], progress: Callable[[Progress], None],
        manifest: Path | None = None) -> Iterator[tuple[ModelSpec, ModelResult]]:
    """Yield (spec, record) as each model finishes, so the caller can save as it goes."""
    count = len(specs)
    with tempfile.TemporaryDirectory(prefix="modelexport-run-") as tmp:
        for index, spec in enumerate(specs, 1):
            record = run_one(spec, Path(tmp), lambda stage, elapsed, i=index, s=spec:
                             progress(Progress(i, count, s.name, stage, elapsed)), manifest)
            outcome = f"FAILED: {record.error}" if isinstance(record, Failed) else "ok"
            progress(Progress(index, count, spec.name, outcome, record.wall_s, done=True))
            yield spec, record


def run_manifest(manifest: Manifest, specs: list[ModelSpec], results_path: Path,
                 progress: Callable[[Progress], None], shard: Shard | None = None,
                 pull_request: PullRequest | None = None) -> Results:
    """Run every model; the results file is rewritten after each one, so an interrupted
    run keeps what finished."""
    document = replace(Results.new(manifest), shard=shard, pull_request=pull_request)
    results.write(results_path, document)
    for spec, record in run(specs, progress, manifest.path):
        document = document.with_model(spec.name, record)
        results.write(results_path, document)
    return document
