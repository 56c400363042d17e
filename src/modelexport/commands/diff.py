"""What changed in the graph between two exports, per module: OLD and NEW are each a tagged
ONNX file, its .hierarchy.json sidecar, or a results or baseline file (with --model).
Repeated layers that changed alike fold into one line. Exit 0 identical, 1 different, 2
usage error. Needs no torch.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from modelexport.commands import Subcommands, subcommand
from modelexport.errors import UsageError

if TYPE_CHECKING:
    from modelexport.structure import Structure

Format = Literal["text", "markdown", "json"]


@dataclass(frozen=True)
class Args:
    old: Path
    new: Path
    model: str | None
    format: Format


def add_parser(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    diff = subcommand(commands, common, "diff", __doc__,
                      "what changed in the graph between two exports")
    diff.add_argument("old", type=Path, metavar="OLD")
    diff.add_argument("new", type=Path, metavar="NEW")
    diff.add_argument("--model", metavar="NAME",
                      help="the model to compare, in results or baseline files")
    diff.add_argument("--format", choices=get_args(Format), default="text",
                      help="default: %(default)s")
    diff.set_defaults(run=run, arguments=Args)


def run(args: Args) -> int:
    from modelexport import diff, escape

    render = {"text": diff.as_text, "markdown": diff.as_markdown, "json": diff.as_json}
    before = structure_of(args.old, args.model)
    after = structure_of(args.new, args.model)
    found = diff.diff(before, after)
    text = render[args.format](found)
    # Module paths and output names come from the files: no terminal control from them.
    print(escape.printable_lines(text) if args.format == "text" else text, end="")
    return 0 if found.identical else 1


def structure_of(path: Path, model: str | None) -> Structure:
    from modelexport import files, jsonfile, sidecar, structure
    from modelexport.gate import results

    if not path.exists():
        raise UsageError(f"{path}: no such file")
    if not files.starts_with(path, b"{"):
        return structure.of_file(path)
    try:
        document = jsonfile.read(path)
    except ValueError as exc:
        raise UsageError(f"{path}: not JSON, nor an ONNX model") from exc
    schema = document.get("$schema") if isinstance(document, dict) else None
    if schema == sidecar.SCHEMA_ID:
        record = sidecar.read(path)
        onnx_path = path.parent / record.export.onnx_file
        if not onnx_path.is_file():
            raise UsageError(f"{path}: its ONNX file {record.export.onnx_file} is not beside it")
        return structure.of_file(onnx_path)
    if schema in results.Results.READS:
        return _from_results(path, model)
    raise UsageError(f"{path}: neither an ONNX model, a modelexport sidecar nor a results or "
                     "baseline file")


def _from_results(path: Path, model: str | None) -> Structure:
    from modelexport.gate import results
    from modelexport.gate.records import Failed

    document = results.load(path)
    if model is None:
        if len(document.models) != 1:
            raise UsageError(f"{path}: holds {len(document.models)} models; name one with "
                             "--model")
        model = next(iter(document.models))
    record = document.models.get(model)
    if record is None:
        known = ", ".join(document.models) or "none"
        raise UsageError(f"{path}: no model {model!r} (it holds: {known})")
    if isinstance(record, Failed):
        raise UsageError(f"{path}: {model} failed to export there; no graph to compare")
    if record.structure is None:
        raise UsageError(f"{path}: {model} has no structure summary (measured by a modelexport "
                         "before results version 2); run check again")
    return record.structure
