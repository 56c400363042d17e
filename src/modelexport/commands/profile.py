"""``modelexport profile MODEL.onnx``: where inference time goes, per module.

Runs the model in ONNX Runtime with its profiler, attributes every kernel to a module
through the tags (from the file, else its sidecar) and prints the modules' self and
inclusive times; ``--json``, ``--markdown`` and ``--model-explorer`` write the same.
"""

from __future__ import annotations

import argparse
import importlib.util
import json

from modelexport import escape, inference, inputs, jsonfile, profile
from modelexport.errors import MissingExtraError, UsageError
from modelexport.publish import hotspots


def run(args: argparse.Namespace) -> int:
    if not args.model.is_file():
        raise UsageError(f"{args.model}: no such file")
    for option in ("runs", "threads", "depth"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise UsageError(f"--{option} {value}: needs at least 1")
    if args.warmup < 0:
        raise UsageError(f"--warmup {args.warmup}: cannot be negative")
    # Before the model runs, not after.
    jsonfile.ensure_writable(("--json", args.json), ("--markdown", args.markdown),
                             ("--model-explorer", args.model_explorer))
    if importlib.util.find_spec("onnxruntime") is None:
        raise MissingExtraError("onnxruntime")
    settings = profile.Settings(args.runs, args.warmup, args.threads, args.optimization)
    overrides = [inputs.parse_spec(text) for text in args.input]
    found, model = inference.run(args.model, settings, overrides, args.seed)
    # Module paths and class names come from the file: no terminal control from them.
    print(escape.printable_lines(hotspots.as_text(found, args.depth)), end="")
    if args.json:
        jsonfile.write_atomic(args.json, found.to_json())
        print(f"profile: {args.json}")
    if args.markdown:
        jsonfile.replace_text(args.markdown, hotspots.as_markdown(found, args.depth))
        print(f"markdown: {args.markdown}")
    if args.model_explorer:
        overlay = profile.overlay(found, model.graph.nodes, model.graph.name or "<main>")
        jsonfile.replace_text(args.model_explorer, json.dumps(overlay, indent=1) + "\n")
        print(f"Model Explorer overlay: {args.model_explorer} (model-explorer {args.model} "
              f"--extensions=model_explorer_onnx --node_data_paths={args.model_explorer})")
    return 0
