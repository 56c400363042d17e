"""Where inference time goes, per module: run MODEL in ONNX Runtime (CPU) with its profiler
and attribute every kernel to a module through the tags, following ORT's fused and renamed
nodes back to the exported ones. Prints self and inclusive times per module; --json,
--markdown and --model-explorer write the same. Inputs: as the export fed them (its
sidecar), else the graph's static shapes, or --input. A decoder exported with its KV cache
is profiled twice, as it generates: the prefill of a prompt (time to first token) and one
decode step in the middle of the new tokens (time per output token).
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
from modelexport.kvcache import NEW_TOKENS, PROMPT_TOKENS

RUNS = 20
WARMUP = 1  # the first run after it is 0.97-1.11x the median (docs/profile.md)
DEPTH = 4
TIMEOUT_S = 600
INPUT_MB = 1024
THREADS_LIMIT = 256  # as the manifest allows


@dataclass(frozen=True)
class Args:
    model: Path
    runs: int
    warmup: int
    threads: int | None
    optimization: str
    input: list[str]
    seed: int
    depth: int
    json: Path | None
    markdown: Path | None
    model_explorer: Path | None
    trace: Path | None
    flame: Path | None
    memory: bool
    timeout: float
    max_input_mb: float
    prompt_tokens: int
    new_tokens: int


def add_parser(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    prof = subcommand(commands, common, "profile", __doc__,
                      "where inference time goes, per module")
    prof.add_argument("model", type=Path, metavar="MODEL.onnx")
    prof.add_argument("--runs", type=int, default=RUNS, help="measured runs (default: %(default)s)")
    prof.add_argument("--warmup", type=int, default=WARMUP,
                      help="unmeasured runs first (default: %(default)s)")
    prof.add_argument("--threads", type=int, help="ORT intra-op threads (default: ORT's)")
    prof.add_argument("--optimization", choices=OPTIMIZATIONS, default="all",
                      help="ORT graph optimization level (default: %(default)s, ORT's own)")
    prof.add_argument("--input", action="append", default=[],
                      metavar="NAME=SHAPE[:DTYPE][:LO..HI]",
                      help="an input's shape, e.g. input_ids=4x128 (repeatable)")
    prof.add_argument("--seed", type=int, default=0, help="for the input values")
    prof.add_argument("--timeout", type=float, default=TIMEOUT_S, metavar="SECONDS",
                      help="stop the runs after this long (default: %(default)g)")
    prof.add_argument("--max-input-mb", type=float, default=INPUT_MB, metavar="MB",
                      help="the inputs' size at most, in all (default: %(default)g)")
    prof.add_argument("--prompt-tokens", type=int, default=PROMPT_TOKENS, metavar="N",
                      help="a decoder with its KV cache: the prompt its prefill takes "
                      "(default: %(default)s)")
    prof.add_argument("--new-tokens", type=int, default=NEW_TOKENS, metavar="N",
                      help="a decoder with its KV cache: the tokens generated after the "
                      "prompt; the decode step timed is the middle one (default: %(default)s)")
    prof.add_argument("--depth", type=int, default=DEPTH,
                      help="module depth shown; deeper ones fold into their ancestors "
                      "(default: %(default)s)")
    prof.add_argument("--memory", action="store_true",
                      help="also where memory goes per module: the weights its nodes read, "
                      "the activations its kernels produce and the temporary memory they "
                      "allocate (in --json too)")
    prof.add_argument("--json", type=Path, metavar="FILE", help="write the profile as JSON")
    prof.add_argument("--markdown", type=Path, metavar="FILE", help="write the table as markdown")
    prof.add_argument("--model-explorer", type=Path, metavar="FILE",
                      help="write a Model Explorer node-data overlay (ms per node)")
    prof.add_argument("--trace", type=Path, metavar="FILE",
                      help="write a typical run as Chrome trace events nested by module "
                      "(Perfetto, speedscope, chrome://tracing)")
    prof.add_argument("--flame", type=Path, metavar="FILE",
                      help="write collapsed stacks by module, weights in nanoseconds "
                      "(speedscope, flamegraph.pl)")
    prof.set_defaults(run=run, arguments=Args)


def run(args: Args) -> int:
    from modelexport import escape, inputs, jsonfile, kvcache, onnxfile, structure
    from modelexport.inference import memory, overlay, session
    from modelexport.inference.records import Settings
    from modelexport.publish import flame, hotspots

    _refuse_meaningless(args)
    # Before the model runs, not after.
    memory_overlay = (args.model_explorer.with_suffix(".memory.json")
                      if args.model_explorer and args.memory else None)
    jsonfile.ensure_writable(("--json", args.json), ("--markdown", args.markdown),
                             ("--model-explorer", args.model_explorer),
                             ("--model-explorer", memory_overlay),
                             ("--trace", args.trace), ("--flame", args.flame))
    if importlib.util.find_spec("onnxruntime") is None:
        raise MissingExtraError("onnxruntime")
    settings = Settings(args.runs, args.warmup, args.threads, args.optimization,
                        args.prompt_tokens, args.new_tokens)
    overrides = [inputs.parse_spec(text) for text in args.input]
    phases = {} if overrides else kvcache.phases(onnxfile.read(args.model).inputs,
                                                 settings.prompt_tokens, settings.new_tokens)
    stop_on_sigterm()
    profiles = {}
    memories = {}
    weights = structure.of_file(args.model) if args.memory else None
    for phase, specs in (phases or {"": overrides}).items():
        found, model = session.run(args.model, settings, specs, args.seed,
                                   int(args.max_input_mb * 1e6), args.timeout)
        profiles[phase] = found
        if phase:
            print(_phase_line(phase, args))
        # Module paths and class names come from the file: no terminal control from them.
        print(escape.printable_lines(hotspots.as_text(found, args.depth)), end="")
        if weights:
            memories[phase] = memory.memory(found, weights)
            print(escape.printable_lines(hotspots.memory_text(memories[phase], args.depth)),
                  end="")
    if args.json:
        documents = {phase: {**one.to_json(), **({"memory": memories[phase].to_json()}
                                                 if phase in memories else {})}
                     for phase, one in profiles.items()}
        jsonfile.write_atomic(args.json, documents if phases else documents[""])
        print(f"profile: {args.json}")
    if args.markdown:
        jsonfile.replace_text(args.markdown, "\n".join(
            (f"### {_phase_line(phase, args)}\n\n" if phase else "")
            + hotspots.as_markdown(one, args.depth) for phase, one in profiles.items()))
        print(f"markdown: {args.markdown}")
    # A decoder's overlay, trace and stacks: where each generated token's time goes.
    shown = profiles.get(kvcache.DECODE, found)
    if args.trace:
        jsonfile.replace_text(args.trace, json.dumps(flame.trace(shown)) + "\n")
        print(f"trace: {args.trace}")
    if args.flame:
        jsonfile.replace_text(args.flame, flame.collapsed(shown))
        print(f"collapsed stacks: {args.flame}")
    if args.model_explorer:
        data = overlay.overlay(shown, model.graph.nodes, model.graph.name or "<main>")
        jsonfile.replace_text(args.model_explorer, json.dumps(data, indent=1) + "\n")
        paths = [args.model_explorer]
        if memory_overlay:  # a second file: Model Explorer shows one value per node a file
            paths.append(memory_overlay)
            data = overlay.overlay(shown, model.graph.nodes, model.graph.name or "<main>",
                                   memory=True)
            jsonfile.replace_text(memory_overlay, json.dumps(data, indent=1) + "\n")
        shown_paths = ",".join(map(str, paths))
        print(f"Model Explorer overlay: {shown_paths} (model-explorer {args.model} "
              f"--extensions=model_explorer_onnx --node_data_paths={shown_paths})")
    return 0


def _phase_line(phase: str, args: Args) -> str:
    from modelexport import kvcache

    if phase == kvcache.PREFILL:
        return f"prefill: {args.prompt_tokens} prompt tokens, empty cache (time to first token)"
    cached = args.prompt_tokens + args.new_tokens // 2
    return (f"decode: 1 token after {cached} cached, the middle of {args.new_tokens} new "
            "tokens (time per output token)")


def _refuse_meaningless(args: Args) -> None:
    if not args.model.is_file():
        raise UsageError(f"{args.model}: no such file")
    for option, value in (("runs", args.runs), ("threads", args.threads), ("depth", args.depth),
                          ("prompt-tokens", args.prompt_tokens),
                          ("new-tokens", args.new_tokens)):
        if value is not None and value < 1:
            raise UsageError(f"--{option} {value}: needs at least 1")
    if args.warmup < 0:
        raise UsageError(f"--warmup {args.warmup}: cannot be negative")
    if args.threads is not None and args.threads > THREADS_LIMIT:
        raise UsageError(f"--threads {args.threads}: at most {THREADS_LIMIT}")
    for option, number in (("timeout", args.timeout), ("max-input-mb", args.max_input_mb)):
        if not 0 < number < math.inf:
            raise UsageError(f"--{option} {number:g}: a positive number")
