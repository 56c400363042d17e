"""Validate each FILE against its schema: a manifest (.yaml/.yml), or a hierarchy sidecar
(.json), or an ONNX file (.onnx: its sidecar, and that the tags in the file agree with it).
Needs neither torch nor onnx.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from modelexport.commands import Subcommands, subcommand
from modelexport.errors import ModelExportError


@dataclass(frozen=True)
class Args:
    files: list[Path]


def add_parser(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    validate = subcommand(commands, common, "validate", __doc__,
                          "check sidecars, ONNX tags and manifests")
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.set_defaults(run=run, arguments=Args)


def run(args: Args) -> int:
    from modelexport.escape import printable, printable_message

    # The exit code rule: 1 when a file is invalid (the answer is no), 2 when one is not
    # there to check (the question cannot be answered); the others are checked either way.
    code = 0
    for path in args.files:
        if not path.is_file():
            print(f"modelexport: error: {printable(str(path))}: no such file", file=sys.stderr)
            code = 2
            continue
        try:
            print(printable(_validate_one(path)))
        except ModelExportError as exc:
            print(f"modelexport: error: {printable_message(str(exc))}", file=sys.stderr)
            code = max(code, 1)
    return code


def _validate_one(path: Path) -> str:
    from modelexport import sidecar
    from modelexport.commands import console
    from modelexport.gate import manifest
    from modelexport.publish import report

    if path.suffix in (".yaml", ".yml"):
        loaded = manifest.load(path)
        console.announce(report.located("warning", loaded.warnings))
        factories = [m.source.factory for m in loaded.models if m.source.factory]
        unchecked = (f" (their modules found; not imported, so not checked until exported: "
                     f"{', '.join(map(str, factories))})") if factories else ""
        return f"{path}: valid manifest, {len(loaded.models)} models{unchecked}"
    result = sidecar.verify(path)
    against = f", tags agree with {result.onnx}" if result.onnx else " (no ONNX file beside it)"
    return f"{result.sidecar}: valid, {result.nodes} nodes{against}"
