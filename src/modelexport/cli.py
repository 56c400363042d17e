"""Command line: parse, call the library, print. Exit codes: 0 ok, 1 failed, 2 usage error.

Nothing heavy is imported at module level so that ``--help`` answers at once and the
commands that do not export work without torch.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelexport import __version__
from modelexport.errors import MissingExtraError, ModelExportError, UsageError

if TYPE_CHECKING:
    from modelexport.gate import Judgement
    from modelexport.github import Annotation
    from modelexport.manifest import Manifest, ModelSpec, Problem
    from modelexport.runner import Progress


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

    export = commands.add_parser(
        "export", parents=[common], help="export one model to ONNX + hierarchy sidecar",
        description="Export a model to ONNX; writes OUTPUT and OUTPUT's .hierarchy.json.",
    )
    export.add_argument("model", nargs="?", help="hub id (org/name) or a save_pretrained dir")
    export.add_argument("-o", "--output", required=True, type=Path, help="the .onnx to write")
    source = export.add_argument_group("model source")
    source.add_argument("--revision", help="hub revision to pin (commit sha recommended)")
    source.add_argument("--model-type", help="build from a config of this type, random weights")
    source.add_argument("--config", action="append", default=[], metavar="KEY=VALUE,...",
                        help="config overrides for --model-type (repeatable)")
    source.add_argument("--model-class", default="AutoModel",
                        help="transformers Auto class to instantiate (default: AutoModel)")
    source.add_argument("--seed", type=int, default=0, help="seed for weights and inputs")
    source.add_argument("--trust-remote-code", action="store_true",
                        help="allow the model's own Python code from the hub to run")
    how = export.add_argument_group("export")
    how.add_argument("--exporter", choices=["auto", "torchscript", "dynamo"], default="auto",
                     help="auto: TorchScript, then dynamo if it fails (default)")
    how.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    how.add_argument("--input", action="append", default=[], metavar="NAME=SHAPE[:DTYPE][:LO..HI]",
                     help="explicit input, e.g. input_ids=1x32:int64:0..1000 (repeatable)")
    how.add_argument("--use-cache", action="store_true",
                     help="keep the model's KV cache outputs (off by default)")
    how.add_argument("--external-data", action="store_true",
                     help="write the weights to OUTPUT.data (automatic above ~1.8 GB)")
    how.add_argument("--clean", action="store_true",
                     help="write no node metadata into the ONNX file (sidecar only)")
    how.add_argument("--validate", action="store_true",
                     help="run onnx.checker (full) and compare onnxruntime with PyTorch")
    how.add_argument("--tolerance", type=float, default=1e-4,
                     help="max abs difference allowed by --validate (default: 1e-4)")
    export.set_defaults(func=_export)

    check = commands.add_parser(
        "check", parents=[common], help="the gate: export a manifest's models, compare, verdict",
        description="Export every model of MANIFEST (each in its own process), measure, "
        "compare with the baseline and fail on a regression. Exit 0 pass, 1 regression or "
        "failure, 2 usage or manifest error.",
    )
    check.add_argument("manifest", type=Path)
    check.add_argument("--baseline", type=Path, help="baseline JSON to compare with")
    check.add_argument("--results", type=Path, default=Path("modelexport-results.json"),
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
    check.set_defaults(func=_check)

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
    compare.set_defaults(func=_compare)

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
    comment.set_defaults(func=_comment)

    baseline = commands.add_parser("baseline", parents=[common], help="manage the baseline")
    baseline_commands = baseline.add_subparsers(dest="baseline_command", required=True)
    update = baseline_commands.add_parser(
        "update", parents=[common], help="make results the new baseline",
        description="Write RESULTS into BASELINE (atomically). Models that failed in RESULTS "
        "keep their previous baseline entry.",
    )
    update.add_argument("--results", type=Path, required=True)
    update.add_argument("--baseline", type=Path, required=True)
    update.set_defaults(func=_baseline_update)

    merge = commands.add_parser(
        "merge", parents=[common], help="merge shard results into one results file",
        description="Merge the results of check --shard runs; fails if a selected model is "
        "missing or appears twice.",
    )
    merge.add_argument("files", nargs="+", type=Path, metavar="RESULTS")
    merge.add_argument("-o", "--output", type=Path, required=True)
    merge.set_defaults(func=_merge)

    validate = commands.add_parser(
        "validate", parents=[common], help="check sidecars, ONNX tags and manifests",
        description="Validate each FILE against its schema: a manifest (.yaml/.yml), or a "
        "hierarchy sidecar (.json), or an ONNX file (.onnx: its sidecar, and that the tags in "
        "the file agree with it). Needs no torch except to read ONNX files.",
    )
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.set_defaults(func=_validate)
    return parser


def _export(args: argparse.Namespace) -> int:
    from modelexport import inputs, sources

    source = sources.from_cli(
        args.model, model_type=args.model_type, config=args.config, revision=args.revision,
        seed=args.seed, model_class=args.model_class, trust_remote_code=args.trust_remote_code,
    )
    specs = tuple(inputs.parse_spec(text) for text in args.input)
    try:
        from modelexport.htp.export import ExportOptions, export
    except ImportError as exc:
        raise MissingExtraError(exc.name or "torch") from exc
    options = ExportOptions(
        exporter=args.exporter, opset=args.opset, clean=args.clean, validate=args.validate,
        tolerance=args.tolerance, inputs=specs, use_cache=args.use_cache, seed=args.seed,
        external_data=args.external_data,
    )
    result = export(source, args.output, options)
    stats = result.statistics
    export_info = result.sidecar["export"]
    share = 100 * stats["unattributed"] / max(stats["nodes"], 1)
    print(
        f"{result.onnx_path}: {stats['nodes']} nodes, {stats['exact']} exact, "
        f"{stats['inferred']} inferred, {stats['unattributed']} unattributed ({share:.1f} %); "
        f"{export_info['exporter']} opset {export_info['opset']}, "
        f"{sum(result.sidecar['timings'].values()):.2f} s"
    )
    parity = result.sidecar["validation"]["parity"]
    if parity is not None:
        print(f"validated: onnx.checker ok, onnxruntime max abs diff {parity['max_abs_diff']:.2g}")
    print(f"sidecar: {result.sidecar_path}")
    return 0


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


def _check(args: argparse.Namespace) -> int:
    from modelexport import gate, github, manifest

    if args.update_baseline and args.baseline is None:
        raise UsageError("--update-baseline needs --baseline FILE")
    if args.repeats is not None and args.repeats < 1:
        raise UsageError(f"--repeats {args.repeats}: needs at least 1")
    if args.threshold is not None and args.threshold < 0:
        raise UsageError(f"--threshold {args.threshold:g}: a slowdown, e.g. 0.10 for +10 %")
    if importlib.util.find_spec("torch") is None:  # say so once, not once per model
        raise MissingExtraError("torch")
    loaded = manifest.load(args.manifest).overridden(repeats=args.repeats,
                                                     time_threshold=args.threshold)
    _warn_about(loaded.warnings)
    specs = loaded.select(args.select)
    if not specs:
        raise UsageError(f"{args.manifest}: no model has tag(s) {', '.join(args.select)}")
    shard = None
    if args.shard:
        specs, shard = _my_shard(specs, args.shard, args.baseline)
    context = {"shard": shard, "pull_request": github.pull_request(os.environ)}
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        current = gate.measure(loaded, specs, args.results, _ProgressPrinter(), context)
    except KeyboardInterrupt:
        print(f"modelexport: interrupted; finished models are in {args.results}",
              file=sys.stderr)
        return 130
    judgement = gate.judge(current, args.baseline, gate.policies(loaded), args.allow_env_drift,
                           scope={spec.name for spec in specs})
    _print_reports(judgement, args, args.results, loaded)
    if args.update_baseline:
        _write_baseline(current, args.baseline)
    return 1 if judgement.failed else 0


class _ProgressPrinter:
    """On a terminal, one line per model rewritten in place; in a CI log, a plain line
    each time a model reaches a new stage."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.last: tuple[int, str] | None = None

    def __call__(self, progress: Progress) -> None:
        if self.tty:
            print("\r\x1b[K" + progress.line(), end="\n" if progress.done else "", flush=True)
        elif progress.done or (progress.index, progress.stage) != self.last:
            print(progress.line(), flush=True)
        self.last = (progress.index, progress.stage)


def _my_shard(specs: list[ModelSpec], text: str, baseline: Path | None
              ) -> tuple[list[ModelSpec], dict[str, Any]]:
    from modelexport import results

    index, sep, count = text.partition("/")
    if not (sep and index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise UsageError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. 1/2")
    known = results.load(baseline, kind="baseline") if baseline and baseline.is_file() else None
    names = [spec.name for spec in specs]
    mine = set(results.shards(names, int(count), results.durations(known))[int(index) - 1])
    shard = {"index": int(index), "count": int(count), "selected": names}
    return [spec for spec in specs if spec.name in mine], shard


def _merge(args: argparse.Namespace) -> int:
    from modelexport import results

    merged = results.merge([(path, results.load(path, kind="results")) for path in args.files])
    results.write(args.output, merged)
    print(f"{args.output}: {len(merged['models'])} models from {len(args.files)} files")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _compare(args: argparse.Namespace) -> int:
    from modelexport import gate, manifest, results

    current = results.load(args.results, kind="results")
    loaded = manifest.load(args.manifest) if args.manifest else None
    judgement = gate.judge(current, args.baseline, gate.policies(loaded), args.allow_env_drift)
    _print_reports(judgement, args, args.results, loaded)
    return 1 if judgement.failed else 0


def _print_reports(judgement: Judgement, args: argparse.Namespace, results_path: Path,
                   loaded: Manifest | None) -> None:
    from modelexport import github, report

    baseline_arg = getattr(args, "baseline", None) or Path("baseline.json")
    hint = report.update_hint(str(results_path), str(baseline_arg))
    print(report.terminal(judgement.verdicts, judgement.notes), end="")
    markdown = report.markdown(judgement.verdicts, judgement.results, judgement.baseline,
                               judgement.notes, hint)
    if args.report_md:
        args.report_md.write_text(markdown)
    if args.report_json:
        args.report_json.write_text(report.as_json(judgement.verdicts, judgement.notes))
    env = os.environ
    notes = []
    if github.in_actions(env):
        lines = {spec.name: spec.line for spec in loaded.models} if loaded else {}
        notes += report.annotations(judgement.verdicts, str(loaded.path) if loaded else None,
                                    lines)
        github.publish(env, markdown, report.outputs(
            judgement.verdicts, str(results_path), str(args.report_md or "")))
    if args.comment:
        key = args.comment_key or _comment_key(judgement.results)
        notes.append(github.comment(env, markdown, key, judgement.results.get("pull_request")
                                    or github.pull_request(env)))
    _announce(notes)


def _comment_key(results: dict[str, Any]) -> str:
    shard = results.get("shard")
    where = results["manifest"]["path"]
    return f"{where} shard {shard['index']}/{shard['count']}" if shard else where


def _comment(args: argparse.Namespace) -> int:
    from modelexport import github, results

    current = results.load(args.results, kind="results")
    try:
        body = args.report.read_text("utf-8")
    except OSError as exc:
        raise UsageError(f"{args.report}: cannot read: {exc.strerror}") from exc
    target = current.get("pull_request")
    _announce([github.comment(os.environ, body, args.comment_key or _comment_key(current),
                              target)])
    return 0


def _announce(notes: list[Annotation]) -> None:
    """Annotations as workflow commands in Actions, else plain lines (warnings to stderr)."""
    from modelexport import github

    if github.in_actions(os.environ):
        for line in github.workflow_commands(notes):
            print(line, flush=True)
        return
    for note in notes:
        stream = sys.stdout if note.kind == "notice" else sys.stderr
        where = f"{note.file}:{note.line}: " if note.file else ""
        print(f"modelexport: {note.kind}: {where}{note.message}", file=stream)


def _warn_about(warnings: Sequence[Problem]) -> None:
    _announce(_on_their_lines("warning", warnings))


def _on_their_lines(kind: str, problems: Sequence[Problem], title: str | None = None
                    ) -> list[Annotation]:
    from modelexport.github import Annotation

    return [Annotation(kind, p.message, str(p.path), p.line, title) for p in problems]


def _baseline_update(args: argparse.Namespace) -> int:
    from modelexport import results

    _write_baseline(results.load(args.results, kind="results"), args.baseline)
    return 0


def _write_baseline(current: dict[str, Any], path: Path) -> None:
    from modelexport import results

    previous = results.load(path, kind="baseline") if path.is_file() else None
    results.write(path, results.updated_baseline(current, previous))
    print(f"baseline written: {path}")


def _validate(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        if not path.is_file():
            print(f"modelexport: error: {path}: no such file", file=sys.stderr)
            failed += 1
            continue
        try:
            print(_validate_one(path))
        except MissingExtraError:
            raise
        except ModelExportError as exc:
            print(f"modelexport: error: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def _validate_one(path: Path) -> str:
    from modelexport import manifest, metadata

    if path.suffix in (".yaml", ".yml"):
        loaded = manifest.load(path)
        _warn_about(loaded.warnings)
        return f"{path}: valid manifest, {len(loaded.models)} models"
    result = metadata.check(path)
    against = f", tags agree with {result.onnx}" if result.onnx else " (no ONNX file beside it)"
    return f"{result.sidecar}: valid, {result.nodes} nodes{against}"


def _annotate(exc: ModelExportError) -> None:
    """In Actions, put manifest problems on their lines of the manifest."""
    from modelexport import github
    from modelexport.manifest import ManifestError

    if isinstance(exc, ManifestError) and github.in_actions(os.environ):
        _announce(_on_their_lines("error", exc.problems, "modelexport: manifest"))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="modelexport: %(levelname)s: %(message)s",
                        level=logging.DEBUG if args.debug else logging.WARNING)
    if not args.debug:
        # Exporter chatter (TracerWarnings, deprecations, torchvision notes) is not ours.
        warnings.filterwarnings("ignore")
        libraries = ("torch", "torch.onnx", "transformers", "onnxscript", "onnx_ir")
        for name in (*libraries, "huggingface_hub"):
            logging.getLogger(name).setLevel(logging.ERROR)
    try:
        return args.func(args)
    except ModelExportError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"modelexport: error: {exc}", file=sys.stderr)
        _annotate(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("modelexport: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
