"""One model's measurement, run in its own process and driven step by step by the runner.

    python -m modelexport.gate.worker JOB.json RESULT.json STAGE PARENT_PID REPLY_FD

JOB holds the ``Job``; STAGE holds what the worker is doing now, for the runner's progress
line. The worker loads the model once (timed apart) and answers ``loaded`` on REPLY_FD;
told ``warm-up`` (one command a line on stdin), it exports it once, validated, and answers
``ready``; then ``export`` (one timed export of the loaded model; answered ``done``) or
``finish`` (the inference profile
where the job asks for one, then RESULT receives the ``Measured`` record, and the worker
exits). So the runner can alternate the exports of two workers, the base's and the head's
of a pull request, and a load that comes and goes hits both. Any error writes a ``Failed``
RESULT; a crash, an OOM kill or a hang leaves none, and the runner records that.
The last export stays in the worker's folder (``EXPORT``), for a profile of both sides.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, NoReturn

from modelexport import jsonfile, structure
from modelexport.errors import ModelExportError
from modelexport.gate.latency import FIRST_TOKEN, Latency
from modelexport.gate.records import Failed, Job, Measured, ModelResult
from modelexport.gate.sandbox import die_with_parent
from modelexport.htp.options import GATED_PHASES, TOTAL, ExportOptions
from modelexport.inference.records import Settings
from modelexport.verify.divergence import Diverged

EXPORT = "export"  # the folder below the worker's own where its exports go


@dataclass
class Measurement:
    """A model loaded and exported once (validated), taking timed exports one at a time."""

    job: Job
    stage: Callable[[str], object]
    output: Path  # where every export of it is written
    loaded: Any  # sources.LoadedModel
    load_s: float
    options: ExportOptions
    warmup: Any  # htp.export's result of the validated export
    summary: structure.Structure
    samples: dict[str, list[float]]
    load_peak: int  # bytes resident at the worker's peak while loading
    export_peaks: list[int]  # the same during each timed export, where it can be reset

    @classmethod
    def start(cls, job: Job, stage: Callable[[str], object], folder: Path,
              go_on: Callable[[], bool]) -> Measurement | None:
        """Load ``job``'s model, then, where ``go_on()`` says so, export it once, validated,
        into ``folder``; None where it says not."""
        from modelexport.htp.export import export_module
        from modelexport.sources import load

        # The timed exports write no sidecar: the warm-up's, beside the last of them, holds
        # the same tags, with its validation.
        options = ExportOptions(exporter=job.exporter, opset=job.opset, inputs=job.inputs,
                                seed=job.source.seed, dynamic=job.dynamic,
                                tolerance=job.tolerance, sidecar=False)
        stage("loading")
        started = time.perf_counter()
        loaded = load(job.source)
        load_s = time.perf_counter() - started - loaded.download_s
        load_peak = peak_rss_bytes()
        if not go_on():
            return None
        folder.mkdir(exist_ok=True)
        output = folder / f"{job.name}.onnx"
        stage("warm-up export (validated)")
        warmup = export_module(loaded.model, loaded.config, output,
                               replace(options, validate=True, sidecar=True), job.source,
                               examples=loaded.examples)
        return cls(job, stage, output, loaded, load_s, options, warmup,
                   structure.of_file(output),  # before the timed exports write over it
                   {phase: [] for phase in (*GATED_PHASES, TOTAL)}, load_peak, [])

    def export(self) -> None:
        """One timed export; its per-phase seconds join the samples."""
        from modelexport.htp.export import export_module

        done = len(self.samples[TOTAL])
        self.stage(f"export {done + 1}/{self.job.repeats}")
        measured = reset_peak()
        timings = export_module(self.loaded.model, self.loaded.config, self.output,
                                self.options, self.job.source,
                                examples=self.loaded.examples).sidecar.timings
        if measured:
            self.export_peaks.append(peak_rss_bytes())
        for phase in GATED_PHASES:
            self.samples[phase].append(timings[phase])
        self.samples[TOTAL].append(sum(timings[p] for p in GATED_PHASES))

    def finish(self) -> Measured:
        """The record of every export so far, with the inference profile the job asks for."""
        onnx_bytes = sum(p.stat().st_size for p in self.output.parent.iterdir()
                         if not p.name.endswith(".json"))
        latency, first_token = profile_export(
            self.output, self.job.inference, self.stage, self.job.keep,
        ) if self.job.inference else (None, None)
        record = self.warmup.sidecar
        return Measured(
            samples=self.samples, load_s=self.load_s, download_s=self.loaded.download_s,
            peak_rss_bytes=peak_rss_bytes(), onnx_bytes=onnx_bytes,
            exporter=record.export.exporter, opset=record.export.opset,
            fallback=record.export.fallback, statistics=record.statistics,
            schema_valid=not record.schema_errors(), validation=record.validation,
            structure=self.summary, inference=latency, first_token=first_token,
            load_peak_bytes=self.load_peak, export_peak_bytes=tuple(self.export_peaks),
        )


def serve(job: Job, stage: Callable[[str], object], folder: Path, commands: IO[str],
          reply: Callable[[str], object]) -> Measured | None:
    """Measure ``job`` as the runner commands (see the module's docstring); None when the
    runner closed the commands before ``finish`` (it is gone, or gave up on this model)."""
    def warm_up_when_told() -> bool:
        reply("loaded")
        command = commands.readline().strip()
        if command not in ("warm-up", ""):
            raise ModelExportError(f"the runner sent {command[:40]!r} before warm-up")
        return command == "warm-up"

    measurement = Measurement.start(job, stage, folder / EXPORT, warm_up_when_told)
    if measurement is None:
        return None
    reply("ready")
    for line in commands:
        command = line.strip()
        if command == "export":
            measurement.export()
            reply("done")
        elif command == "finish":
            return measurement.finish()
        else:
            raise ModelExportError(f"the runner sent an unknown command {command[:40]!r}")
    return None


def profile_export(output: Path, settings: Settings, stage: Callable[[str], object],
                   keep: bool) -> tuple[Latency, Latency | None]:
    """The export in onnxruntime, as ``modelexport profile`` runs it: its latency, and for a
    decoder with its KV cache one decode step's and the prefill's (first token). ``keep``:
    its JSON and Model Explorer overlay written beside the export, as ``profile --json
    --model-explorer`` writes them."""
    from modelexport import kvcache, onnxfile
    from modelexport.inference import overlay, session

    phases = kvcache.phases(onnxfile.read(output).inputs, settings.prompt_tokens,
                            settings.new_tokens)
    stage(f"inference {settings.runs} runs" + (" per phase" if phases else ""))
    try:
        profiles = {phase: session.run(output, settings, specs)
                    for phase, specs in (phases or {"": []}).items()}
    except ModelExportError as exc:
        raise ModelExportError(f"inference profile: {exc}") from exc
    found, model = profiles[kvcache.DECODE if phases else ""]
    if keep:
        jsonfile.write_atomic(output.with_suffix(".profile.json"), found.to_json() if not phases
                              else {phase: one.to_json() for phase, (one, _) in profiles.items()})
        jsonfile.write_atomic(output.with_suffix(".overlay.json"), overlay.overlay(
            found, model.graph.nodes, model.graph.name or "<main>"))
    first = Latency.of(profiles[kvcache.PREFILL][0], FIRST_TOKEN) if phases else None
    return Latency.of(found), first


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


def reset_peak() -> bool:
    """Start this process's peak resident memory anew from what it holds now (Linux 4.0
    and later: writing 5 to ``clear_refs`` resets VmHWM), so that the next reading is the
    peak of what runs in between. False where it cannot be reset."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def main(argv: list[str]) -> NoReturn:
    job_file, result_file = Path(argv[0]), Path(argv[1])
    stage_file = Path(argv[2])
    die_with_parent(int(argv[3]))
    replies = os.fdopen(int(argv[4]), "w", buffering=1)
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    job = Job.from_json(json.loads(job_file.read_text()))
    result: ModelResult | None
    try:
        result = serve(job, stage_file.write_text, result_file.parent, sys.stdin,
                       lambda answer: replies.write(answer + "\n"))
    except Exception as exc:  # reported as this model's failure, with its own words
        where = f"{job.where}: " if job.where else ""
        result = Failed(f"{where}{type(exc).__name__}: {exc}".strip()[:2000],
                        divergence=exc.verification.to_json()
                        if isinstance(exc, Diverged) else None)
    exit_with(result_file, result.to_json() if result is not None else None)


def exit_with(result_file: Path, document: dict[str, Any] | None) -> NoReturn:
    """Write the result (atomically), if there is one, and exit at once: the interpreter's
    teardown, with torch and onnxruntime loaded, takes a second or more, once per model."""
    if document is not None:
        jsonfile.write_atomic(result_file, document)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
