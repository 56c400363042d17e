"""``modelexport diff OLD NEW``: what changed in the graph between two exports, per module.

OLD and NEW are each a tagged ONNX file, its ``.hierarchy.json`` sidecar, or a results or
baseline file of the gate (``--model`` names the model). Exit 0 when the structures are
identical, 1 when they differ, 2 on a usage error, as ``diff`` does. No torch.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from modelexport import diff, escape, sidecar, structure
from modelexport.errors import UsageError
from modelexport.gate import results
from modelexport.gate.records import Failed
from modelexport.structure import Structure

RENDER: dict[str, Callable[[diff.StructureDiff], str]] = {
    "text": diff.as_text, "markdown": diff.as_markdown, "json": diff.as_json}


def run(args: argparse.Namespace) -> int:
    before = structure_of(args.old, args.model)
    after = structure_of(args.new, args.model)
    found = diff.diff(before, after)
    text = RENDER[args.format](found)
    # Module paths and output names come from the files: no terminal control from them.
    print(escape.printable_lines(text) if args.format == "text" else text, end="")
    return 0 if found.identical else 1


def structure_of(path: Path, model: str | None) -> Structure:
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    with path.open("rb") as file:
        head = file.read(64).lstrip()
    if not head.startswith(b"{"):
        return structure.of_file(path)
    try:
        schema = json.loads(path.read_text("utf-8")).get("$schema")
    except (ValueError, AttributeError) as exc:
        raise UsageError(f"{path}: not JSON, nor an ONNX model") from exc
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
