"""Where the numbers of an export diverge, module by module: MODEL run in ONNX Runtime beside
the PyTorch model it came from (its sidecar names it), beside another file with the same
tags (--against: an fp16 or int8 conversion, another opset or exporter), or beside itself at
another optimization level (--optimization A,B). For each
module, in graph order: the gap of its outputs, the gap its inputs already carried, and
what it added; the first module that crosses the tolerance by itself is named. Exit 0
within the tolerance, 1 beyond it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path

from modelexport.commands import Subcommands, stop_on_sigterm, subcommand
from modelexport.errors import MissingExtraError, UsageError
from modelexport.inference.records import OPTIMIZATIONS

TOLERANCE = 1e-4  # as the export's own parity check


@dataclass(frozen=True)
class Args:
    model: Path
    against: Path | None
    optimization: str | None
    input: list[str]
    seed: int
    depth: int | None
    tolerance: float
    json: Path | None
    markdown: Path | None
    model_explorer: Path | None


def add_parser(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    verify = subcommand(commands, common, "verify", __doc__,
                        "where the numbers diverge, per module")
    verify.add_argument("model", type=Path, metavar="MODEL.onnx")
    verify.add_argument("--against", type=Path, metavar="OTHER.onnx",
                        help="an export of the same model with the same tags (fp16, int8, "
                        "another opset or exporter)")
    verify.add_argument("--optimization", metavar="A,B",
                        help="ONNX Runtime levels to run MODEL, then OTHER (or MODEL again), at, "
                        f"e.g. disable,all ({', '.join(OPTIMIZATIONS)}; default: all,all)")
    verify.add_argument("--input", action="append", default=[],
                        metavar="NAME=SHAPE[:DTYPE][:LO..HI]",
                        help="an input's shape, e.g. input_ids=4x128 (repeatable)")
    verify.add_argument("--seed", type=int, default=0, help="for the input values")
    verify.add_argument("--depth", type=int,
                        help="module depth compared; deeper ones are part of their ancestor "
                        "(default: every module)")
    verify.add_argument("--tolerance", type=float, default=TOLERANCE,
                        help="largest absolute difference a module may add "
                        "(default: %(default)g)")
    verify.add_argument("--json", type=Path, metavar="FILE", help="write the result as JSON")
    verify.add_argument("--markdown", type=Path, metavar="FILE",
                        help="write the table as markdown")
    verify.add_argument("--model-explorer", type=Path, metavar="FILE",
                        help="write a Model Explorer node-data overlay (what each node's "
                        "module added)")
    verify.set_defaults(run=run, arguments=Args)


def run(args: Args) -> int:
    from modelexport import escape, inputs, jsonfile, tags
    from modelexport.publish import divergence
    from modelexport.verify.run import against_pytorch, verify

    optimizations = _optimizations(args)
    jsonfile.ensure_writable(("--json", args.json), ("--markdown", args.markdown),
                             ("--model-explorer", args.model_explorer))
    for module in ("onnx", "onnxruntime"):
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(module)
    stop_on_sigterm()
    overrides = [inputs.parse_spec(text) for text in args.input]
    if args.against is None and optimizations[0] == optimizations[1]:
        if importlib.util.find_spec("torch") is None:
            raise MissingExtraError("torch")
        found = against_pytorch(args.model, optimizations[1], overrides, args.seed,
                                args.depth, args.tolerance)
    else:
        found = verify(args.model, args.against or args.model, optimizations, overrides,
                       args.seed, args.depth, args.tolerance)
    # Module paths and class names come from the files: no terminal control from them.
    print(escape.printable_lines(divergence.as_text(found)), end="")
    if args.json:
        jsonfile.write_atomic(args.json, found.to_json())
        print(f"verification: {args.json}")
    if args.markdown:
        jsonfile.replace_text(args.markdown, divergence.as_markdown(found))
        print(f"markdown: {args.markdown}")
    if args.model_explorer:
        model = tags.read(args.model)
        data = divergence.overlay(found, [node.name for node in model.graph.nodes],
                                  model.modules, model.graph.name or "<main>")
        jsonfile.replace_text(args.model_explorer, json.dumps(data, indent=1) + "\n")
        print(f"Model Explorer overlay: {args.model_explorer} (model-explorer {args.model} "
              f"--extensions=model_explorer_onnx --node_data_paths={args.model_explorer})")
    return 0 if found.within else 1


def _optimizations(args: Args) -> tuple[str, str]:
    """The two optimization levels; UsageError for a file that is not there or a value
    out of its range."""
    for path in (args.model, args.against):
        if path is not None and not path.is_file():
            raise UsageError(f"{path}: no such file")
    if args.depth is not None and args.depth < 1:
        raise UsageError(f"--depth {args.depth}: needs at least 1")
    if not 0 <= args.tolerance < math.inf:
        raise UsageError(f"--tolerance {args.tolerance:g}: a number of at least 0")
    levels = (args.optimization or "all,all").split(",")
    if len(levels) != 2 or not set(levels) <= set(OPTIMIZATIONS):
        raise UsageError(f"--optimization {args.optimization}: two of "
                         f"{', '.join(OPTIMIZATIONS)}, e.g. disable,all")
    return levels[0], levels[1]
