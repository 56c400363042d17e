"""Run each model of a manifest in its own process, so that one crash, OOM kill or hang is
that model's failure and the others still run; save the results after each model."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

from modelexport import files, jsonfile, schemas
from modelexport.errors import ModelExportError, describe
from modelexport.gate import results, sandbox
from modelexport.gate.manifest import Manifest, ModelSpec
from modelexport.gate.records import Failed, Job, ModelResult, model_result_from_json
from modelexport.gate.results import PullRequest, Results, Shard
from modelexport.sources import Source

log = logging.getLogger(__name__)
POLL_S = 0.5
HEARTBEAT_S = 10.0  # progress is said when the stage changes, and this often while it does not
STAGE_LIMIT = 4096  # bytes of the worker's stage line
LOG_TAIL = 4096  # bytes read from the end of a worker's log, for its last line


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
            manifest: Path | None = None, hub_token: str | None = None,
            user: sandbox.Account | None = None) -> ModelResult:
    """Measure one model in a child process; always returns a record, never raises: what
    goes wrong around the model (a folder gone, a full disk) is its failure too.
    ``on_stage(stage, elapsed)`` is called when the worker reaches a new stage, and every
    HEARTBEAT_S seconds while it does not. The worker runs as ``user`` (None: as this
    process's user) in a folder of its own below ``workdir``."""
    started = time.perf_counter()
    try:
        job = replace(job_for(spec, manifest), source=_fetched(spec.source, hub_token))
        return _measure(spec, job, workdir, on_stage, user, started)
    except (ModelExportError, OSError) as exc:
        return _failure(str(exc) if isinstance(exc, ModelExportError) else describe(exc),
                        started)


def _measure(spec: ModelSpec, job: Job, workdir: Path, on_stage: Callable[[str, float], None],
             user: sandbox.Account | None, started: float) -> ModelResult:
    own = workdir / spec.name
    sandbox.hand_over(own, user)
    paths = {kind: own / kind for kind in ("job.json", "result.json", "stage")}
    paths["job.json"].write_text(json.dumps(job.to_json()))
    # The worker rewrites its stage file in place, so a read can catch it empty: keep the
    # last stage seen rather than flicker back to "starting".
    stage, said, said_at = "starting", "", -HEARTBEAT_S
    with open(workdir / f"{spec.name}.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelexport.gate.worker", str(paths["job.json"]),
             str(paths["result.json"]), str(paths["stage"]), str(os.getpid())],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=sandbox.worker_environment(os.environ, own, job.source is not spec.source),
            start_new_session=True,  # its own process group: a timeout kills all of it
            user=user.uid if user else None, group=user.gid if user else None,
            extra_groups=[] if user else None,
        )
        try:
            while proc.poll() is None:
                elapsed = time.perf_counter() - started
                if elapsed > spec.timeout:
                    _kill(proc)
                    return _failure(f"timed out after {spec.timeout:g} s", started)
                stage = (sandbox.read_written(paths["stage"], STAGE_LIMIT) or "").strip() \
                    or stage
                if stage != said or elapsed - said_at >= HEARTBEAT_S:
                    on_stage(stage, elapsed)
                    said, said_at = stage, elapsed
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=min(POLL_S, max(spec.timeout - elapsed, 0.01)))
        except BaseException:
            _kill(proc)  # Ctrl-C or SIGTERM: leave no orphan behind
            raise
    return _outcome(proc, paths["result.json"], workdir / f"{spec.name}.log", started)


def _outcome(proc: subprocess.Popen[bytes], result_file: Path, log_file: Path,
             started: float) -> ModelResult:
    text = sandbox.read_written(result_file)
    if text is not None:
        return replace(_result(text), wall_s=time.perf_counter() - started)
    if result_file.exists() or result_file.is_symlink():
        return _failure("its result is not a regular file of at most "
                        f"{sandbox.RESULT_LIMIT:,} bytes", started)
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return _failure(f"killed by {name}{hint}", started)
    # The model's code writes to the log: it may have written gigabytes.
    last = files.tail(log_file, LOG_TAIL).decode(errors="replace").strip().splitlines()[-1:]
    return _failure(f"exited with code {proc.returncode}: {(last or [''])[0][:300]}", started)


def _result(text: str) -> ModelResult:
    """The record the worker wrote; the model's code ran there, so it is checked like any
    file from outside."""
    try:
        document = jsonfile.loads(text)
        problems = schemas.schema_errors(document, schemas.RESULT_RECORD)
    except ValueError as exc:  # not JSON, or nested beyond parsing
        return Failed(f"its result is not JSON: {describe(exc)}")
    if problems:
        return Failed(f"its result is not a result record: {problems[0]}")
    return model_result_from_json(document)


def _fetched(source: Source, hub_token: str | None) -> Source:
    """A hub model's files fetched here, where the hub token is, before any of its code
    runs; the worker gets the folder they are in. Other sources as they are."""
    if source.kind != "hub":
        return source
    from modelexport.sources import download

    return replace(source, kind="local", path=download(source, hub_token))


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have just exited
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _failure(error: str, started: float) -> Failed:
    return Failed(error, time.perf_counter() - started)


def run(specs: list[ModelSpec], progress: Callable[[Progress], None],
        manifest: Path | None = None, hub_token: str | None = None
        ) -> Iterator[tuple[ModelSpec, ModelResult]]:
    """Yield (spec, record) as each model finishes, so the caller can save as it goes.
    Run as root, the workers run as an unprivileged user (``sandbox``); UsageError before
    the first model where that user cannot run them."""
    user = sandbox.account()
    if user is not None:
        sandbox.check_usable(user, [folder for spec in specs for folder in
                                    (*spec.source.python_path, spec.source.path or "")
                                    if folder])
    count = len(specs)
    with tempfile.TemporaryDirectory(prefix="modelexport-run-", ignore_cleanup_errors=True
                                     ) as tmp:
        for index, spec in enumerate(specs, 1):
            # Again for each model: a model's code (or a temporary-folder cleaner) may have
            # removed it, and that must not end the run.
            Path(tmp).mkdir(exist_ok=True)
            os.chmod(tmp, 0o711)  # each worker reaches its own folder, lists none
            def on_stage(stage: str, elapsed: float, i: int = index, s: ModelSpec = spec) -> None:
                progress(Progress(i, count, s.name, stage, elapsed))

            record = run_one(spec, Path(tmp), on_stage, manifest, hub_token, user)
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
                 pull_request: PullRequest | None = None, hub_token: str | None = None
                 ) -> Run:
    """Run every model; the results file is rewritten after each one, so an interrupted
    run keeps what finished. ``hub_token`` fetches hub models (``sandbox.seal`` took it
    out of the environment)."""
    document = replace(Results.new(manifest), shard=shard, pull_request=pull_request)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    with jsonfile.exclusive(results_path):
        unsaved = _save(results_path, document)
        for spec, record in run(specs, progress, manifest.path, hub_token):
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
