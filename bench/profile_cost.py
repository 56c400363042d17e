"""What `modelexport profile` costs, against what a user would write without it.

Whole processes, alternating, each side as a user runs it:
  bare:    a script that opens an onnxruntime session on MODEL (ORT's defaults) and runs
           it WARMUP + RUNS times on the same inputs (the runs alone are timed inside too);
  profile: `modelexport profile MODEL --runs RUNS --warmup WARMUP --json FILE`.
Prints min/median/max of each side and of the ratio over the rounds, and the share of
kernel time attributed below the root (from the profile's JSON). --memory also times
`profile --memory` in each round, beside the plain profile. --phases times the steps of one
profile inside this process instead (perf_counter around each).

    python bench/profile_cost.py /tmp/big/bert-base-torchscript.onnx --input input_ids=1x128 \
        --input attention_mask=1x128 --input token_type_ids=1x128 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modelexport.commands.profile import WARMUP

BARE = """
import sys, time
import onnxruntime as ort
from modelexport import inputs, tags
from modelexport.inference import session as profiled
model = tags.read(__import__("pathlib").Path(sys.argv[1]), whole=True)
feed = profiled.feeds(model, [inputs.parse_spec(s) for s in sys.argv[4:]])
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
for _ in range(int(sys.argv[3])):
    session.run(None, feed)
started = time.perf_counter()
for _ in range(int(sys.argv[2])):
    session.run(None, feed)
print(time.perf_counter() - started)
"""


def phases(model: Path, runs: int, warmup: int, specs: list[str]) -> None:
    """The steps of ``session.run``, each timed, with a plain session for comparison."""
    import onnxruntime as ort

    from modelexport import inputs, onnxfile, tags
    from modelexport.inference import aggregate, attribute, events, session
    from modelexport.inference.records import Settings

    clock = time.perf_counter()

    def lap(label: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        print(f"  {label:42} {now - clock:6.3f} s")
        clock = now

    tagged = tags.read(model, whole=True)
    feed = session.feeds(tagged, [inputs.parse_spec(spec) for spec in specs])
    lap("tags and inputs (file, sidecar)")
    settings = Settings(runs, warmup, None, "all")
    with tempfile.TemporaryDirectory() as tmp:
        ort_session = session._session(model, settings, Path(tmp))
        lap("session, the optimized graph saved")
        for _ in range(warmup + runs):
            ort_session.run(None, feed)
        lap(f"{warmup} + {runs} runs, profiler on")
        found = events.trace_events(Path(ort_session.end_profiling()).read_text())
        lap(f"end_profiling, parse ({len(found)} events)")
        optimized = onnxfile.read(Path(tmp) / "optimized.onnx")
        placed = attribute.attribute(tagged.graph.nodes, tagged.by_node, optimized.nodes)
        aggregate.aggregate(model.name, settings, events.runs_of(found, warmup, runs), placed,
                            tagged.classes)
        lap("attribute, aggregate")
    plain = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    lap("a plain session (for comparison)")
    for _ in range(warmup + runs):
        plain.run(None, feed)
    lap(f"{warmup} + {runs} runs, profiler off")


def timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, proc.stdout


def spread(values: list[float]) -> str:
    return f"{min(values):.3f} / {statistics.median(values):.3f} / {max(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=WARMUP)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--input", action="append", default=[])
    parser.add_argument("--phases", action="store_true")
    parser.add_argument("--memory", action="store_true",
                        help="also time profile --memory, alternating with the plain profile")
    args = parser.parse_args()
    if args.phases:
        phases(args.model, args.runs, args.warmup, args.input)
        return
    bare, runs_only, tool, shares, memory = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "p.json"
        for _ in range(args.rounds):
            seconds, printed = timed([sys.executable, "-c", BARE, str(args.model),
                                      str(args.runs), str(args.warmup), *args.input])
            bare.append(seconds)
            runs_only.append(float(printed))
            inputs = [f"--input={spec}" for spec in args.input]
            tool.append(timed([sys.executable, "-m", "modelexport", "profile",
                               str(args.model), "--runs", str(args.runs), "--warmup",
                               str(args.warmup), "--json", str(out), *inputs])[0])
            shares.append(json.loads(out.read_text())["attributed"])
            if args.memory:
                memory.append(timed([sys.executable, "-m", "modelexport", "profile",
                                     str(args.model), "--runs", str(args.runs), "--warmup",
                                     str(args.warmup), "--memory", *inputs])[0])
    print(f"{args.model.name}, {args.runs} runs after {args.warmup}, {args.rounds} rounds "
          "(min / median / max, seconds)")
    print(f"  bare process (session + runs): {spread(bare)}")
    print(f"  the {args.runs} runs alone:          {spread(runs_only)}")
    print(f"  modelexport profile:           {spread(tool)}")
    ratios = [t / b for t, b in zip(tool, bare, strict=True)]
    print(f"  profile / bare process:        {spread(ratios)}")
    print(f"  profile / the runs alone:      "
          f"{spread([t / r for t, r in zip(tool, runs_only, strict=True)])}")
    print(f"  attributed below the root:     {spread(shares)}")
    if memory:
        print(f"  profile --memory:              {spread(memory)}")
        print(f"  profile --memory / profile:    "
              f"{spread([m / t for m, t in zip(memory, tool, strict=True)])}")


if __name__ == "__main__":
    main()
