"""Run each model of a manifest in processes of its own (forked from one server that
imported the export stack once: ``spawn``), so that one crash, OOM kill or hang is that
model's failure and the others still run; save the results after each model.

Measured against a pull request's base (``BaseTree``), a model's base and head workers are
alive together and take their timed exports in turns, ABBA (head, base, base, head, ...),
so a load that comes and goes slows both members of a pair alike; then one process profiles
both exports' inference, run by run in turns (``alternate``).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

from modelexport import files, jsonfile, schemas
from modelexport.errors import ModelExportError, describe
from modelexport.gate import results, sandbox
from modelexport.gate.basetree import BaseTree
from modelexport.gate.child import Child
from modelexport.gate.latency import FIRST_TOKEN, Latency
from modelexport.gate.manifest import Manifest, ModelSpec
from modelexport.gate.records import Failed, Job, Measured, ModelResult, model_result_from_json
from modelexport.gate.results import Base, PullRequest, Results, Shard
from modelexport.gate.spawn import ForkServer, Workers, workers
from modelexport.gate.worker import EXPORT
from modelexport.inference.records import Settings
from modelexport.sources import Source

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Side:
    """One side of a measurement: a manifest entry, where it is, and its folder's name."""

    spec: ModelSpec
    manifest: Path | None
    label: str = ""  # "base" or "head" when measured as a pair
    folder: str = ""  # its folder below the run's; default: the model's name
    cwd: Path | None = None  # where its code runs; None: here
    keep: bool = False  # its profile and overlay written beside its export, to be kept


def _folders(name: str) -> dict[str, str]:
    """The folders below the run's where a model is measured, by role: one side alone (or
    the head), the base beside it, and the profile of both ('@' is no model name's)."""
    return {"head": name, "base": f"{name}@base", "pair": f"{name}@pair"}


def job_for(spec: ModelSpec, manifest: Path | None = None, keep: bool = False) -> Job:
    """What the worker needs of a manifest entry."""
    where = f"{manifest}:{spec.line}" if manifest else ""
    return Job(spec.name, spec.source, spec.inputs, spec.exporter, spec.opset, spec.repeats,
               spec.dynamic, where, spec.inference.settings if spec.inference else None,
               spec.tolerance, keep)


def run_one(spec: ModelSpec, workdir: Path, server: ForkServer,
            on_stage: Callable[[str, float], None], manifest: Path | None = None,
            hub_token: str | None = None, keep: bool = False) -> ModelResult:
    """Measure one model in a child process; always returns a record, never raises: what
    goes wrong around the model (a folder gone, a full disk) is its failure too.
    ``on_stage(stage, elapsed)`` is called when the worker reaches a new stage, and every
    ``child.HEARTBEAT_S`` seconds while it does not. The worker, forked by ``server`` as
    its user, runs in a folder of its own below ``workdir``."""
    (record,) = _measure([Side(spec, manifest, keep=keep)], workdir, server, on_stage,
                         hub_token)
    return record


def run_pair(head: Side, base: Side, workdir: Path, server: ForkServer,
             on_stage: Callable[[str, float], None], hub_token: str | None = None
             ) -> tuple[ModelResult, ModelResult]:
    """Measure a model's head and base side by side: both as many exports as the head's
    entry asks for, in turns, and the head's inference settings for both. A side that
    fails leaves the other measured. Returns (head, base)."""
    named = _folders(head.spec.name)
    sides = [Side(replace(head.spec, inference=None), head.manifest, "head", named["head"]),
             Side(replace(base.spec, repeats=head.spec.repeats, inference=None),
                  base.manifest, "base", named["base"], base.cwd)]
    settings = head.spec.inference.settings if head.spec.inference else None
    started = time.monotonic()
    now, before = _measure(sides, workdir, server, on_stage, hub_token, started)
    if settings is None or not isinstance(now, Measured) or not isinstance(before, Measured):
        return now, before
    deadline = started + 2 * head.spec.timeout
    try:
        latencies = _alternate(head.spec.name, workdir, settings, on_stage, server, started,
                               deadline, 2 * head.spec.timeout)
    except (ModelExportError, OSError) as exc:
        return _failure(f"inference profile: {_said(exc)}", started), before
    wall_s = time.monotonic() - started
    if isinstance(latencies, Failed):
        return replace(latencies, wall_s=wall_s), before
    (head_latency, head_first), (base_latency, base_first) = latencies
    return (_checked(replace(now, inference=head_latency, first_token=head_first,
                             wall_s=wall_s)),
            _checked(replace(before, inference=base_latency, first_token=base_first)))


def _measure(sides: list[Side], workdir: Path, server: ForkServer,
             on_stage: Callable[[str, float], None], hub_token: str | None,
             started: float | None = None) -> list[ModelResult]:
    """Start a worker per side (their loads side by side), warm each up in turn, then ask
    each for its timed exports in turns, reversing the order every round (ABBA); a record
    per side, in order."""
    started = time.monotonic() if started is None else started
    children: list[Child | Failed] = []
    try:
        for side in sides:
            children.append(_start(side, workdir, server, on_stage, hub_token, started,
                                   started + len(sides) * side.spec.timeout))
        running = [child for child in children if isinstance(child, Child)]
        for one in running:
            one.ask(None)  # "loaded": the loads side by side (a transformers import each)
        for one in running:
            # "ready": exported once, validated. One side at a time: two such warm-ups
            # side by side took 0.9 s, where one alone takes 0.3 s (the threads of both,
            # torch's and ONNX Runtime's, contend for the cores).
            one.ask("warm-up")
        for round_ in range(sides[0].spec.repeats):
            for one in running if round_ % 2 == 0 else running[::-1]:
                one.ask("export")
        return [child if isinstance(child, Failed) else _outcome(child, started)
                for child in children]
    except BaseException:  # Ctrl-C or SIGTERM: leave no orphan behind
        for child in children:
            if isinstance(child, Child):
                child.kill()
        raise


def _start(side: Side, workdir: Path, server: ForkServer,
           on_stage: Callable[[str, float], None], hub_token: str | None, started: float,
           deadline: float) -> Child | Failed:
    """Its worker started, or why it could not be (a hub download, a folder gone)."""
    spec = side.spec
    prefix = f"{side.label}: " if side.label else ""
    try:
        job = replace(job_for(spec, side.manifest, side.keep),
                      source=_fetched(spec.source, hub_token))
        own = workdir / (side.folder or spec.name)
        return Child("modelexport.gate.worker", job.to_json(), own,
                     workdir / f"{side.folder or spec.name}.log",
                     sandbox.worker_environment(os.environ, own, job.source is not spec.source),
                     server, deadline, spec.timeout,
                     lambda stage: on_stage(prefix + stage, time.monotonic() - started),
                     side.cwd)
    except (ModelExportError, OSError) as exc:
        return _failure(_said(exc), started)


def _outcome(child: Child, started: float) -> ModelResult:
    try:
        text = child.end("finish")
    except (ModelExportError, OSError) as exc:  # its folder gone, with its log
        return _failure(_said(exc), started)
    if text is None:
        return _failure(child.failure or "ended without a result", started)
    return replace(_result(text), wall_s=time.monotonic() - started)


def _alternate(name: str, workdir: Path, settings: Settings, on_stage: Callable[[str, float], None],
               server: ForkServer, started: float, deadline: float, timeout: float
               ) -> tuple[tuple[Latency, Latency | None], tuple[Latency, Latency | None]] | Failed:
    """Both exports' inference, profiled in one process, run by run in turns: the two
    workers leave their last export in their folders, moved here."""
    named = _folders(name)
    own = workdir / named["pair"]
    sandbox.hand_over(own, server.user)
    paths = []
    for label in ("head", "base"):
        os.rename(workdir / named[label] / EXPORT, own / label)
        paths.append(str(own / label / f"{name}.onnx"))
    child = Child("modelexport.gate.alternate",
                  {"paths": paths, "settings": vars(settings),
                   "timeout_s": max(deadline - time.monotonic(), 1.0)},
                  own / "run", workdir / f"{named['pair']}.log",
                  sandbox.worker_environment(os.environ, own / "run", False), server, deadline,
                  timeout,
                  lambda stage: on_stage(f"base and head: {stage}", time.monotonic() - started))
    text = child.end()
    if text is None:
        return _failure(f"inference profile: {child.failure}", started)
    try:
        document = jsonfile.loads(text)
        if document.get("status") == "failed":
            return Failed(str(document.get("error"))[:2000])
        head, base = (Latency.from_json(found) for found in document["latencies"])
        firsts = [Latency.from_json(found, FIRST_TOKEN)
                  for found in document.get("first_token", [None, None]) if found]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return Failed(f"inference profile: its result is not two profiles: {describe(exc)}")
    head_first, base_first = firsts if len(firsts) == 2 else (None, None)
    return (head, head_first), (base, base_first)


def _checked(record: Measured) -> ModelResult:
    """A record with a profile from outside the worker, as the results schema has it."""
    problems = schemas.schema_errors(record.to_json(), schemas.RESULT_RECORD)
    if problems:
        return Failed(f"inference profile: not a profile: {problems[0]}", record.wall_s)
    return record


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


def _said(exc: Exception) -> str:
    return str(exc) if isinstance(exc, ModelExportError) else describe(exc)


def _failure(error: str, started: float) -> Failed:
    return Failed(error, time.monotonic() - started)


Measurement = tuple[ModelSpec, ModelResult, ModelResult | None]  # spec, head, base


def run(specs: list[ModelSpec], progress: Callable[[Progress], None],
        manifest: Path | None = None, hub_token: str | None = None,
        base: BaseTree | None = None, keep: Path | None = None,
        pool: Workers | None = None) -> Iterator[Measurement]:
    """Yield (spec, record, base record) as each model finishes, so the caller can save as
    it goes; the base record is None where there is no base, or no such model in it. Run as
    root, the workers run as an unprivileged user (``sandbox``); UsageError before the
    first model where that user cannot run them. ``keep``: each model's export, sidecar,
    profile and overlay are copied to ``keep/MODEL`` (the base's to ``keep/MODEL@base``).
    ``pool``: the workers' place and server (``workers``); None: one of its own."""
    if pool is None:
        with workers() as own:
            yield from run(specs, progress, manifest, hub_token, base, keep, own)
        return
    if pool.user is not None:
        everything = [*specs, *(base.manifest.models if base else [])]
        sandbox.check_usable(pool.user, [folder for spec in everything for folder in
                                         (*spec.source.python_path, spec.source.path or "")
                                         if folder])
    paired = {m.name: m for m in base.manifest.models} if base else {}
    count = len(specs)
    tmp, server = pool.folder, pool.server
    for index, spec in enumerate(specs, 1):
        # Again for each model: a model's code (or a temporary-folder cleaner) may have
        # removed it, and that must not end the run.
        tmp.mkdir(exist_ok=True)
        os.chmod(tmp, 0o711)
        def on_stage(stage: str, elapsed: float, i: int = index, s: ModelSpec = spec) -> None:
            progress(Progress(i, count, s.name, stage, elapsed))

        before: ModelResult | None = None
        if spec.name in paired and base is not None:
            record, before = run_pair(Side(spec, manifest),
                                      Side(paired[spec.name], base.manifest.path,
                                           cwd=base.cwd),
                                      tmp, server, on_stage, hub_token)
        else:
            record = run_one(spec, tmp, server, on_stage, manifest, hub_token,
                             keep is not None)
        failed = [f"{label}{r.error}" for label, r in (("", record), ("base: ", before))
                  if isinstance(r, Failed)]
        outcome = f"FAILED: {'; '.join(failed)}" if failed else "ok"
        progress(Progress(index, count, spec.name, outcome, record.wall_s, done=True))
        if keep is not None:
            _keep(tmp, spec.name, keep)
        for folder in _folders(spec.name).values():
            # Its exports and its code's files: the disk is finite.
            shutil.rmtree(tmp / folder, ignore_errors=True)
        yield spec, record, before


def _keep(workdir: Path, name: str, keep: Path) -> None:
    """Copy what the model's workers left (the exports, moved for the paired profile or
    not) to ``keep``; no link they made is followed. A copy that fails (a full disk) is
    said, and the run goes on: the measurement stands without it."""
    named = _folders(name)
    try:
        for label in ("head", "base"):
            if not files.copy_files(workdir / named[label], EXPORT, keep / named[label]):
                files.copy_files(workdir / named["pair"], label, keep / named[label])
    except OSError as exc:
        log.warning("%s: not kept in %s (%s)", name, keep, exc.strerror or exc)


class Run(NamedTuple):
    """A finished run: its results, and why the results file lacks some of them (None when
    the file holds them all)."""

    results: Results
    unsaved: str | None


def run_manifest(manifest: Manifest, specs: list[ModelSpec], results_path: Path,
                 progress: Callable[[Progress], None], shard: Shard | None = None,
                 pull_request: PullRequest | None = None, hub_token: str | None = None,
                 base: BaseTree | None = None, keep: Path | None = None,
                 pool: Workers | None = None) -> Run:
    """Run every model (beside its ``base``, where given); the results file is rewritten
    after each one, so an interrupted run keeps what finished. ``hub_token`` fetches hub
    models (``sandbox.seal`` took it out of the environment); ``pool`` as ``run`` takes
    it."""
    document = replace(Results.new(manifest), shard=shard, pull_request=pull_request,
                       base=Base.new(base.manifest, base.label, base.unmatched)
                       if base else None)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    with jsonfile.exclusive(results_path):
        unsaved = _save(results_path, document)
        for spec, record, before in run(specs, progress, manifest.path, hub_token, base,
                                        keep, pool):
            document = document.with_model(spec.name, record, before)
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
