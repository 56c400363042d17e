"""Export a model to ONNX; writes OUTPUT and OUTPUT's .hierarchy.json sidecar, every node
tagged with the module that made it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from modelexport.commands import Subcommands, subcommand
from modelexport.errors import MissingExtraError, UsageError
from modelexport.htp.options import REQUESTABLE, Exporter, ExportOptions
from modelexport.kvcache import TASKS


@dataclass(frozen=True)
class Args:
    model: str | None
    output: Path
    revision: str | None
    model_type: str | None
    factory: str | None
    python_path: list[str]
    config: list[str]
    model_class: str | None
    task: str | None
    seed: int
    trust_remote_code: bool
    exporter: Exporter
    opset: int | None
    input: list[str]
    dynamic: list[str]
    static: bool
    use_cache: bool
    external_data: bool
    clean: bool
    validate: bool
    tolerance: float
    debug: bool


def add_parser(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    export = subcommand(commands, common, "export", __doc__,
                        "export one model to ONNX + hierarchy sidecar")
    export.add_argument("model", nargs="?", help="hub id (org/name) or a save_pretrained dir")
    export.add_argument("-o", "--output", required=True, type=Path, help="the .onnx to write")
    source = export.add_argument_group("model source")
    source.add_argument("--revision", help="hub revision to pin (commit sha recommended)")
    source.add_argument("--model-type", help="build from a config of this type, random weights")
    source.add_argument("--factory", metavar="PKG.MODULE:FUNCTION",
                        help="your own code: a function returning an nn.Module (or one and a "
                        "dict of example inputs); --config gives its keyword arguments")
    source.add_argument("--python-path", action="append", default=[], metavar="DIR",
                        help="where --factory's imports resolve from (repeatable; default: .)")
    source.add_argument("--config", action="append", default=[], metavar="KEY=VALUE,...",
                        help="config overrides for --model-type, or the keyword arguments of "
                        "--factory (repeatable)")
    source.add_argument("--model-class",
                        help="transformers Auto class to instantiate (default: AutoModel)")
    source.add_argument("--task", choices=TASKS,
                        help="how the model is called: text-generation-with-past exports a "
                        "decoder with its KV cache as inputs and outputs (dynamo; loads "
                        "AutoModelForCausalLM unless --model-class says otherwise)")
    source.add_argument("--seed", type=int, default=0, help="seed for weights and inputs")
    source.add_argument("--trust-remote-code", action="store_true",
                        help="allow the model's own Python code from the hub to run")
    how = export.add_argument_group("export")
    how.add_argument("--exporter", choices=REQUESTABLE, default=ExportOptions.exporter,
                     help="auto: TorchScript, then dynamo if it fails (default)")
    how.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    how.add_argument("--input", action="append", default=[], metavar="NAME=SHAPE[:DTYPE][:LO..HI]",
                     help="explicit input, e.g. input_ids=1x32:int64:0..1000 (repeatable)")
    how.add_argument("--dynamic", action="append", default=[], metavar="NAME:AXIS=DIM,...",
                     help="dynamic axes of an input, e.g. input_ids:0=batch,1=sequence "
                     "(repeatable; default: batch and sequence axes by input name, as optimum "
                     "exports them)")
    how.add_argument("--static", action="store_true",
                     help="fix every input dimension at its traced size")
    # Earlier versions kept transformers' cache objects as outputs, which neither exporter
    # takes on transformers 5; said where a user's old command line still has it.
    how.add_argument("--use-cache", action="store_true", help=argparse.SUPPRESS)
    how.add_argument("--external-data", action="store_true",
                     help="write the weights to OUTPUT.data (automatic above ~1.8 GB)")
    how.add_argument("--clean", action="store_true",
                     help="write no node metadata into the ONNX file (sidecar only)")
    how.add_argument("--validate", action="store_true",
                     help="run onnx.checker (full) and compare onnxruntime with PyTorch")
    how.add_argument("--tolerance", type=float, default=ExportOptions.tolerance,
                     help="max abs difference allowed by --validate (default: %(default)g)")
    export.set_defaults(run=run, arguments=Args)


def run(args: Args) -> int:
    from modelexport import inputs, logs, sources

    source = sources.from_cli(
        args.model, model_type=args.model_type, config=args.config, revision=args.revision,
        seed=args.seed, model_class=args.model_class, trust_remote_code=args.trust_remote_code,
        factory=args.factory, python_path=tuple(args.python_path), task=args.task,
    )
    specs = tuple(inputs.parse_spec(text) for text in args.input)
    if args.static and args.dynamic:
        raise UsageError("give --dynamic or --static, not both")
    if args.use_cache:
        raise UsageError("--use-cache is gone: a decoder's KV cache is exported with --task "
                         "text-generation-with-past (past_key_values.N.key/value in, "
                         "present.N.key/value out)")
    dynamic = {} if args.static else dict(map(inputs.parse_axes, args.dynamic)) or None
    try:
        from modelexport.htp.export import export
    except ImportError as exc:
        raise MissingExtraError(exc.name or "torch") from exc
    if not args.debug:
        logs.quiet()
    options = ExportOptions(
        exporter=args.exporter, opset=args.opset, clean=args.clean, validate=args.validate,
        tolerance=args.tolerance, inputs=specs, seed=args.seed,
        external_data=args.external_data, dynamic=dynamic,
    )
    result = export(source, args.output, options)
    stats, info = result.statistics, result.sidecar.export
    share = 100 * stats.unattributed / max(stats.nodes, 1)
    print(
        f"{result.onnx_path}: {stats.nodes} nodes, {stats.exact} exact, "
        f"{stats.inferred} inferred, {stats.unattributed} unattributed ({share:.1f} %); "
        f"{info.exporter} opset {info.opset}, {sum(result.sidecar.timings.values()):.2f} s"
    )
    parity = result.sidecar.validation.parity
    if parity is not None:
        how = " over generation" if args.task else ""
        print(f"validated: onnx.checker ok, onnxruntime max abs diff{how} "
              f"{parity.max_abs_diff:.2g}")
    print(f"sidecar: {result.sidecar_path}")
    return 0
