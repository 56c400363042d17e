"""What crosses the process boundary between the runner and a worker: the job a worker
is handed, and the result it hands back (one per model in a results file). No torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median
from typing import Any, Literal

from modelexport.gate.latency import FIRST_TOKEN, Latency
from modelexport.gate.metric import Metric
from modelexport.htp.options import TOTAL, Exporter
from modelexport.inference.records import Settings
from modelexport.inputs import Axes, InputSpec
from modelexport.sidecar import Fallback, TagStatistics, Validation
from modelexport.sources import Source
from modelexport.structure import Structure

EXPORT_TIME = "export time"  # the metric's name
EXPORT_MEMORY = "export memory"  # the worker's peak resident memory during one export


@dataclass(frozen=True)
class Job:
    """One model for a worker to load, export once validated, then ``repeats`` times."""

    name: str
    source: Source
    inputs: tuple[InputSpec, ...] = ()
    exporter: Exporter = "auto"
    opset: int | None = None
    repeats: int = 5
    dynamic: Axes | None = None
    where: str = ""  # "models.yaml:12": where the model's entry is, for its errors
    inference: Settings | None = None  # profile the export in onnxruntime
    tolerance: float = 1e-4  # of the validated export's parity check
    keep: bool = False  # write the profile and its Model Explorer overlay beside the export

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        dynamic = data["dynamic"]
        return cls(data["name"], Source.from_json(data["source"]),
                   tuple(InputSpec.from_json(i) for i in data["inputs"]), data["exporter"],
                   data["opset"], data["repeats"],
                   None if dynamic is None else {name: {int(axis): dim for axis, dim in
                                                        axes.items()}
                                                 for name, axes in dynamic.items()},
                   data["where"],
                   Settings(**data["inference"]) if data.get("inference") else None,
                   data["tolerance"], data["keep"])

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source.to_json(),
                "inputs": [i.to_json() for i in self.inputs], "exporter": self.exporter,
                "opset": self.opset, "repeats": self.repeats, "dynamic": self.dynamic,
                "where": self.where,
                "inference": vars(self.inference) if self.inference else None,
                "tolerance": self.tolerance, "keep": self.keep}


@dataclass(frozen=True)
class Measured:
    """A model that exported: raw seconds per measured export, per phase and in total."""

    samples: dict[str, list[float]]
    load_s: float
    download_s: float
    peak_rss_bytes: int
    onnx_bytes: int
    exporter: str
    opset: int
    fallback: Fallback | None
    statistics: TagStatistics
    schema_valid: bool
    validation: Validation
    structure: Structure | None = None  # None: measured before summaries were recorded
    inference: Latency | None = None  # None: not profiled
    first_token: Latency | None = None  # a decoder's prefill; None: not one, or not profiled
    wall_s: float = 0.0  # the whole worker process, set by the runner
    # Peak resident bytes of the worker while loading, and during each timed export (its
    # high-water mark reset before each); empty where the system cannot reset it.
    load_peak_bytes: int | None = None
    export_peak_bytes: tuple[int, ...] = ()
    status: Literal["ok"] = field(default="ok", init=False)

    @property
    def total(self) -> list[float]:
        """The gated seconds of each measured export: what a time verdict is decided on."""
        return self.samples[TOTAL]

    @property
    def median_s(self) -> float:
        return median(self.total)

    @property
    def work_s(self) -> float:
        """Seconds of measured work: the load, the timed exports, the profiled runs."""
        runs_ms = sum(sum(found.latency_ms) for found in (self.inference, self.first_token)
                      if found)
        return self.load_s + sum(self.total) + runs_ms / 1000

    @property
    def export_time(self) -> Metric:
        return Metric(EXPORT_TIME, "s", tuple(self.total))

    @property
    def export_memory(self) -> Metric | None:
        """Megabytes at the worker's peak during each timed export (the model loaded, the
        export's own allocations on top); None where not measured."""
        if not self.export_peak_bytes:
            return None
        return Metric(EXPORT_MEMORY, "MB", tuple(b / 1e6 for b in self.export_peak_bytes))

    def metrics(self, paired: bool = False) -> list[Metric]:
        """Every metric this run measured, as a verdict judges it: export time and memory,
        and where profiled the latency and a decoder's first token (paired: every run;
        else the means of blocks of runs, ``Latency.metric``)."""
        latencies = [found for found in (self.inference, self.first_token) if found]
        memory = [self.export_memory] if self.export_memory else []
        return [self.export_time, *memory,
                *(found.runs if paired else found.metric for found in latencies)]

    def to_json(self) -> dict[str, Any]:
        data = {
            "status": self.status, "samples": self.samples, "load_s": self.load_s,
            "download_s": self.download_s, "peak_rss_bytes": self.peak_rss_bytes,
            "onnx_bytes": self.onnx_bytes, "exporter": self.exporter, "opset": self.opset,
            "fallback": self.fallback.to_json() if self.fallback else None,
            "statistics": self.statistics.to_json(), "schema_valid": self.schema_valid,
            "validation": self.validation.to_json(), "wall_s": self.wall_s,
        }
        if self.structure:
            data["structure"] = self.structure.to_json()
        if self.inference:
            data["inference"] = self.inference.to_json()
        if self.first_token:
            data["first_token"] = self.first_token.to_json()
        if self.load_peak_bytes is not None:
            data["load_peak_bytes"] = self.load_peak_bytes
        if self.export_peak_bytes:
            data["export_peak_bytes"] = list(self.export_peak_bytes)
        return data


@dataclass(frozen=True)
class Failed:
    """A model that did not export: an error, a crash, a kill or a timeout."""

    error: str
    wall_s: float = 0.0
    divergence: dict[str, Any] | None = None  # a failed parity check, module by module
    status: Literal["failed"] = field(default="failed", init=False)

    def to_json(self) -> dict[str, Any]:
        found = {"status": self.status, "error": self.error, "wall_s": self.wall_s}
        return {**found, "divergence": self.divergence} if self.divergence else found


ModelResult = Measured | Failed


def model_result_from_json(data: dict[str, Any]) -> ModelResult:
    """From a record that passed the results schema."""
    if data["status"] != "ok":
        return Failed(data["error"], data["wall_s"], data.get("divergence"))
    return Measured(
        samples=data["samples"], load_s=data["load_s"], download_s=data["download_s"],
        peak_rss_bytes=data["peak_rss_bytes"], onnx_bytes=data["onnx_bytes"],
        exporter=data["exporter"], opset=data["opset"],
        fallback=Fallback.from_json(data["fallback"]),
        statistics=TagStatistics.from_json(data["statistics"]),
        schema_valid=data["schema_valid"], validation=Validation.from_json(data["validation"]),
        structure=Structure.from_json(data["structure"]) if "structure" in data else None,
        inference=Latency.from_json(data["inference"]) if "inference" in data else None,
        first_token=(Latency.from_json(data["first_token"], FIRST_TOKEN)
                     if "first_token" in data else None),
        wall_s=data["wall_s"], load_peak_bytes=data.get("load_peak_bytes"),
        export_peak_bytes=tuple(data.get("export_peak_bytes", ())),
    )
