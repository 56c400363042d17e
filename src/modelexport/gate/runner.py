"""Run each model of a manifest in its own process, so that one crash, OOM kill or hang is
that model's failure and the others still run; save the results after each model."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

from modelexport import jsonfile
from modelexport.errors import ModelExportError
from modelexport.gate import results
from modelexport.gate.manifest import Manifest, ModelSpec
from modelexport.gate.records import Failed, Job, ModelResult, model_result_from_json
from modelexport.gate.results import PullRequest, Results, Shard

log = logging.getLogger(__name__)
POLL_S = 0.5
# Environment variables a worker never sees: tokens of GitHub, the hub, the runner, and the
# action's inputs (the tokens come in as INPUT_GITHUB-TOKEN, INPUT_HF-TOKEN).
SECRET = re.compile(r"TOKEN|SECRET|PASSWORD|CREDENTIAL|^INPUT_|^ACTIONS_", re.IGNORECASE)


@dataclass(frozen=True)
class Progress:
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
               spec.dynamic, where, spec.inference.settings if spec.inference else None)


def run_one(spec: ModelSpec, workdir: Path, on_stage: Callable[[str, float], None],
            manifest: Path | None = None) -> ModelResult:
    """Measure one model in a child process; always returns a record, never raises.
    ``on_stage(stage, elapsed)`` is called about every POLL_S seconds while it runs."""
    files = {kind: workdir / f"{spec.name}.{kind}" for kind in ("job", "result", "stage", "log")}
    files["job"].write_text(json.dumps(job_for(spec, manifest).to_json()))
    started = time.perf_counter()
    try:
        offline = _fetch(spec)
    except ModelExportError as exc:
        return _failure(str(exc), started)
    # The worker rewrites its stage file in place, so a read can catch it empty: keep the
    # last stage seen rather than flicker back to "starting".
    stage = "starting"
    with open(files["log"], "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelexport.gate.worker", str(files["job"]),
             str(files["result"]), str(files["stage"]), str(os.getpid())],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=worker_environment(os.environ, offline),
            start_new_session=True,  # its own process group: a timeout kills all of it
        )
        try:
            while proc.poll() is None:
                elapsed = time.perf_counter() - started
                if elapsed > spec.timeout:
                    _kill(proc)
                    return _failure(f"timed out after {spec.timeout:g} s", started)
                stage = _read(files["stage"]) or stage
                on_stage(stage, elapsed)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=min(POLL_S, max(spec.timeout - elapsed, 0.01)))
        except BaseException:
            _kill(proc)  # Ctrl-C or SIGTERM: leave no orphan behind
            raise
    return _outcome(proc, files["result"], files["log"], started)


def _outcome(proc: subprocess.Popen[bytes], result_file: Path, log_file: Path,
             started: float) -> ModelResult:
    if result_file.is_file():
        record = model_result_from_json(json.loads(result_file.read_text()))
        return replace(record, wall_s=time.perf_counter() - started)
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return _failure(f"killed by {name}{hint}", started)
    tail = log_file.read_text(errors="replace").strip().splitlines()[-1:] or [""]
    return _failure(f"exited with code {proc.returncode}: {tail[0][:300]}", started)


def worker_environment(environ: Mapping[str, str], offline: bool) -> dict[str, str]:
    """The environment a worker gets: this one without its secrets, for a worker runs the
    model's own code (a pull request's, with trust_remote_code). ``offline``: the model's
    files were fetched here, with the hub token; the worker reads them from the cache."""
    kept = {k: v for k, v in environ.items() if not SECRET.search(k)}
    return {**kept, "HF_HUB_OFFLINE": "1"} if offline else kept


def _fetch(spec: ModelSpec) -> bool:
    """Download a hub model's files here, where the hub token is, before any of its code
    runs; True when there was something to fetch."""
    if spec.source.kind != "hub":
        return False
    from modelexport.sources import download

    download(spec.source)
    return True


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
            def on_stage(stage: str, elapsed: float, i: int = index, s: ModelSpec = spec) -> None:
                progress(Progress(i, count, s.name, stage, elapsed))

            record = run_one(spec, Path(tmp), on_stage, manifest)
            outcome = f"FAILED: {record.error}" if isinstance(record, Failed) else "ok"
            progress(Progress(index, count, spec.name, outcome, record.wall_s, done=True))
            yield spec, record


class Run(NamedTuple):
    """A finished run: its results, and why the results file lacks some of them (None when
    the file holds them all)."""

    results: Results
    unsaved: str | None


def run_manifest(manifest: Manifest, specs: list[ModelSpec], results_path: Path,
                 progress: Callable[[Progress], None], shard: Shard | None = None,
                 pull_request: PullRequest | None = None) -> Run:
    """Run every model; the results file is rewritten after each one, so an interrupted
    run keeps what finished."""
    document = replace(Results.new(manifest), shard=shard, pull_request=pull_request)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    with jsonfile.exclusive(results_path):
        unsaved = _save(results_path, document)
        for spec, record in run(specs, progress, manifest.path):
            document = document.with_model(spec.name, record)
            unsaved = _save(results_path, document)
    return Run(document, unsaved)


def _save(path: Path, document: Results) -> str | None:
    """Write the results, or say why not: a full disk does not stop the run, since the
    models still to come are measured and reported, and the next save may succeed."""
    try:
        results.write(path, document)
    except (OSError, ValueError) as exc:  # a full disk; a record the schema refuses (our bug)
        why = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        log.warning("%s: results not saved (%s); trying again after the next model", path, why)
        return why
    return None
