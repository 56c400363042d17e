"""Command line: the parser, dispatch to ``commands/<name>.py``, and the error edge.
Exit codes: 0 ok, 1 failed, 2 usage error.

Each command module is imported only when it runs, and nothing heavy at all here, so that
``--help`` answers at once and the commands that do not export work without torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path

from modelexport import __version__, profile
from modelexport.errors import ModelExportError
from modelexport.htp.options import REQUESTABLE, ExportOptions
from modelexport.publish import hotspots
from modelexport.sources import Source

# The one folder a run writes to unless told otherwise (the action's output-dir too).
DEFAULT_OUTPUT_DIR = Path("modelexport-out")
DEFAULT_RESULTS = DEFAULT_OUTPUT_DIR / "results.json"
Commands = argparse._SubParsersAction  # what add_subparsers returns, typed nowhere public


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelexport",
        description="Export PyTorch / Hugging Face models to ONNX with every node tagged "
        "with the nn.Module that produced it (HTP).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library logs")
    # Also accepted after the command; SUPPRESS keeps the subcommand from resetting it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and library logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_export, _check, _compare, _comment, _baseline, _merge, _diff, _profile, _validate):
        add(commands, common)
    return parser


def _export(commands: Commands, common: argparse.ArgumentParser) -> None:
    export = commands.add_parser(
        "export", parents=[common], help="export one model to ONNX + hierarchy sidecar",
        description="Export a model to ONNX; writes OUTPUT and OUTPUT's .hierarchy.json.",
    )
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
    source.add_argument("--model-class", default=Source.model_class,
                        help="transformers Auto class to instantiate (default: %(default)s)")
    source.add_argument("--seed", type=int, default=Source.seed,
                        help="seed for weights and inputs")
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
    how.add_argument("--use-cache", action="store_true",
                     help="keep the model's KV cache outputs (off by default)")
    how.add_argument("--external-data", action="store_true",
                     help="write the weights to OUTPUT.data (automatic above ~1.8 GB)")
    how.add_argument("--clean", action="store_true",
                     help="write no node metadata into the ONNX file (sidecar only)")
    how.add_argument("--validate", action="store_true",
                     help="run onnx.checker (full) and compare onnxruntime with PyTorch")
    how.add_argument("--tolerance", type=float, default=ExportOptions.tolerance,
                     help="max abs difference allowed by --validate (default: %(default)g)")
    export.set_defaults(command_module="export")


def _check(commands: Commands, common: argparse.ArgumentParser) -> None:
    check = commands.add_parser(
        "check", parents=[common], help="the gate: export a manifest's models, compare, verdict",
        description="Export every model of MANIFEST (each in its own process), measure, "
        "compare with the baseline and fail on a regression. Exit 0 pass, 1 regression or "
        "failure, 2 usage or manifest error.",
    )
    check.add_argument("manifest", type=Path)
    check.add_argument("--baseline", type=Path, help="baseline JSON to compare with")
    check.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                       help="where to write this run's results (default: %(default)s)")
    check.add_argument("--select", action="append", default=[], metavar="TAG",
                       help="only models with this tag (repeatable)")
    check.add_argument("--shard", metavar="I/N",
                       help="run only shard I of N, balanced by the baseline's durations")
    check.add_argument("--update-baseline", action="store_true",
                       help="write this run's results into --baseline afterwards")
    check.add_argument("--repeats", type=int, metavar="N",
                       help="measured exports per model, for every model (default: manifest)")
    check.add_argument("--threshold", type=float, metavar="FRACTION",
                       help="allowed slowdown of the median for every model, e.g. 0.10 "
                       "(default: manifest, else 0.10)")
    _report_options(check)
    check.set_defaults(command_module="check")


def _compare(commands: Commands, common: argparse.ArgumentParser) -> None:
    compare = commands.add_parser(
        "compare", parents=[common], help="verdict from stored results and baseline",
        description="Compare stored RESULTS with BASELINE without exporting anything. As with "
        "check, a BASELINE that does not exist yet makes every model new (and says so).",
    )
    compare.add_argument("results", type=Path)
    compare.add_argument("baseline", type=Path)
    compare.add_argument("--manifest", type=Path,
                         help="take thresholds and accepted regressions from this manifest")
    _report_options(compare)
    compare.set_defaults(command_module="compare")


def _comment(commands: Commands, common: argparse.ArgumentParser) -> None:
    comment = commands.add_parser(
        "comment", parents=[common], help="post a markdown report as the sticky PR comment",
        description="Create or update this gate's PR comment with REPORT (markdown), on the "
        "pull request recorded in RESULTS by the check run that wrote both (the fork-safe "
        "report job). Needs GITHUB_TOKEN and GITHUB_REPOSITORY in the environment.",
    )
    comment.add_argument("report", type=Path, metavar="REPORT")
    comment.add_argument("--results", type=Path, required=True)
    comment.add_argument("--comment-key", metavar="KEY",
                         help="which sticky comment (default: the results' manifest and shard)")
    comment.set_defaults(command_module="comment")


def _baseline(commands: Commands, common: argparse.ArgumentParser) -> None:
    baseline = commands.add_parser("baseline", parents=[common], help="manage the baseline")
    baseline_commands = baseline.add_subparsers(dest="baseline_command", required=True)
    update = baseline_commands.add_parser(
        "update", parents=[common], help="make results the new baseline",
        description="Write RESULTS into BASELINE (atomically). Models that failed in RESULTS "
        "keep their previous baseline entry.",
    )
    update.add_argument("--results", type=Path, required=True)
    update.add_argument("--baseline", type=Path, required=True)
    update.set_defaults(command_module="baseline")


def _merge(commands: Commands, common: argparse.ArgumentParser) -> None:
    merge = commands.add_parser(
        "merge", parents=[common], help="merge shard results into one results file",
        description="Merge the results of check --shard runs; fails if a selected model is "
        "missing or appears twice.",
    )
    merge.add_argument("files", nargs="+", type=Path, metavar="RESULTS")
    merge.add_argument("-o", "--output", type=Path, required=True)
    merge.set_defaults(command_module="merge")


def _diff(commands: Commands, common: argparse.ArgumentParser) -> None:
    diff = commands.add_parser(
        "diff", parents=[common], help="what changed in the graph between two exports",
        description="Compare the structure of two exports per module: OLD and NEW are each "
        "a tagged ONNX file, its .hierarchy.json sidecar, or a results or baseline file "
        "(with --model). Repeated layers that changed alike fold into one line. Exit 0 "
        "identical, 1 different, 2 usage error. Needs no torch.",
    )
    diff.add_argument("old", type=Path, metavar="OLD")
    diff.add_argument("new", type=Path, metavar="NEW")
    diff.add_argument("--model", metavar="NAME",
                      help="the model to compare, in results or baseline files")
    diff.add_argument("--format", choices=["text", "markdown", "json"], default="text",
                      help="default: %(default)s")
    diff.set_defaults(command_module="diff")


def _profile(commands: Commands, common: argparse.ArgumentParser) -> None:
    prof = commands.add_parser(
        "profile", parents=[common], help="where inference time goes, per module",
        description="Run MODEL in ONNX Runtime (CPU) with its profiler and attribute every "
        "kernel to a module through the tags, following ORT's fused and renamed nodes back "
        "to the exported ones. Prints self and inclusive times per module. Inputs: as the "
        "export fed them (its sidecar), else the graph's static shapes, or --input.",
    )
    prof.add_argument("model", type=Path, metavar="MODEL.onnx")
    prof.add_argument("--runs", type=int, default=profile.DEFAULT_RUNS,
                      help="measured runs (default: %(default)s)")
    prof.add_argument("--warmup", type=int, default=profile.DEFAULT_WARMUP,
                      help="unmeasured runs first (default: %(default)s)")
    prof.add_argument("--threads", type=int, help="ORT intra-op threads (default: ORT's)")
    prof.add_argument("--optimization", choices=profile.OPTIMIZATIONS, default="all",
                      help="ORT graph optimization level (default: %(default)s, ORT's own)")
    prof.add_argument("--input", action="append", default=[],
                      metavar="NAME=SHAPE[:DTYPE][:LO..HI]",
                      help="an input's shape, e.g. input_ids=4x128 (repeatable)")
    prof.add_argument("--seed", type=int, default=0, help="for the input values")
    prof.add_argument("--depth", type=int, default=hotspots.DEFAULT_DEPTH,
                      help="module depth shown; deeper ones fold into their ancestors "
                      "(default: %(default)s)")
    prof.add_argument("--json", type=Path, metavar="FILE", help="write the profile as JSON")
    prof.add_argument("--markdown", type=Path, metavar="FILE", help="write the table as markdown")
    prof.add_argument("--model-explorer", type=Path, metavar="FILE",
                      help="write a Model Explorer node-data overlay (ms per node)")
    prof.set_defaults(command_module="profile")


def _validate(commands: Commands, common: argparse.ArgumentParser) -> None:
    validate = commands.add_parser(
        "validate", parents=[common], help="check sidecars, ONNX tags and manifests",
        description="Validate each FILE against its schema: a manifest (.yaml/.yml), or a "
        "hierarchy sidecar (.json), or an ONNX file (.onnx: its sidecar, and that the tags in "
        "the file agree with it). Needs no torch except to read ONNX files.",
    )
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.set_defaults(command_module="validate")


def _report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report-md", type=Path, metavar="FILE",
                        help="write the markdown report (PR comment body) here")
    parser.add_argument("--report-json", type=Path, metavar="FILE",
                        help="write the verdicts as JSON here")
    parser.add_argument("--allow-env-drift", action="store_true",
                        help="gate timings even if the baseline was measured elsewhere")
    parser.add_argument("--comment", action="store_true",
                        help="create or update the sticky PR comment (GitHub Actions; needs "
                        "GITHUB_TOKEN)")
    parser.add_argument("--comment-key", metavar="KEY",
                        help="which sticky comment (default: the manifest and shard)")


LIBRARIES = ("torch", "torch.onnx", "transformers", "onnxscript", "onnx_ir", "huggingface_hub")


def quiet_libraries() -> None:
    """Only errors from the export stack's loggers. Again after torch is imported: its
    logging setup resets the level of its loggers."""
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR)


def _annotate(exc: ModelExportError) -> None:
    """In Actions, put manifest problems on their lines of the manifest."""
    from modelexport.commands import console
    from modelexport.gate.manifest import ManifestError
    from modelexport.publish import github, report

    if isinstance(exc, ManifestError) and github.in_actions(os.environ):
        console.announce(report.located("error", exc.problems, "modelexport: manifest"))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="modelexport: %(levelname)s: %(message)s",
                        level=logging.DEBUG if args.debug else logging.WARNING)
    if not args.debug:
        # Exporter chatter (TracerWarnings, deprecations, torchvision notes, progress
        # bars) is not ours.
        warnings.filterwarnings("ignore")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_HUB_VERBOSITY", "error")  # set on its import, not later
        quiet_libraries()
    try:
        command = importlib.import_module(f"modelexport.commands.{args.command_module}")
        return command.run(args)
    except ModelExportError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"modelexport: error: {exc}", file=sys.stderr)
        _annotate(exc)
        return exc.exit_code
    except OSError as exc:  # the machine's, not the input's: a full disk, a vanished folder
        if args.debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"modelexport: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("modelexport: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
