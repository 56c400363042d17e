"""What an export is asked to do, and the names it reports under. No torch: the CLI, the
manifest and the gate read these without loading the export stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from modelexport.inputs import InputSpec

Exporter = Literal["auto", "torchscript", "dynamo"]
# Tried in this order under "auto". TorchScript first: it exports small models several times
# faster than dynamo and large ones as fast, with tags as complete (docs/how-htp-works.md,
# "Choosing the exporter"). dynamo covers what TorchScript cannot trace.
EXPORTERS: tuple[Exporter, ...] = ("torchscript", "dynamo")
REQUESTABLE: tuple[Exporter, ...] = ("auto", *EXPORTERS)

# The timed phases of an export, in order (the sidecar's ``timings``; ``download`` is timed
# apart when a hub download happened). The gate times all but ``load``: one load per model,
# then repeated exports of the loaded model.
PHASES = ("load", "inputs", "trace", "export", "project", "write", "validate")
GATED_PHASES = PHASES[1:]
TOTAL = "total"  # the gated phases summed: the sample a time verdict is decided on


@dataclass(frozen=True)
class ExportOptions:
    exporter: Exporter = "auto"
    opset: int | None = None
    clean: bool = False
    validate: bool = False
    # False: no sidecar written (the gate's timed exports: the validated warm-up export's
    # stands for them, and writing one took 1.8 ms of a 100 ms export, outside its phases).
    sidecar: bool = True
    tolerance: float = 1e-4
    inputs: tuple[InputSpec, ...] = ()
    seed: int = 0
    external_data: bool = False  # weights in "<name>.onnx.data" (always, above ~1.8 GB)
    # Input name -> axis -> dimension name. None: the defaults by input name
    # (inputs.DEFAULT_AXES, as optimum exports them); {}: every shape fixed.
    dynamic: dict[str, dict[int, str]] | None = None
