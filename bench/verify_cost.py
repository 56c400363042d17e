"""What ``verify`` against PyTorch costs beside a plain parity check, and beside marking
every tensor as an output (as Polygraphy's ``--onnx-outputs mark all`` does).

    python bench/verify_cost.py                      # bert-base from its config, 5 rounds
    python bench/verify_cost.py --layers 2 --rounds 3

BERT of bert-base's size (random weights, built from its config) is exported once. Each
round runs, each in a fresh process and in turns (the order rotating every round):

- parity: what a user writes to check an export, the documented calls: the model loaded
  as the export loaded it, an onnxruntime session, one run of each, the outputs compared;
- verify: ``verify.run.against_pytorch``, every module's outputs compared;
- mark all: the parity check with every node's output marked as a graph output.

Each reports its seconds from the model's load to the comparison (imports excluded) and its
own peak resident memory (VmHWM). Min/median/max over the rounds; ratios of medians.
A benchmark, not a test: it reports, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

KINDS = ("parity", "verify", "mark all")


def child(kind: str, path: Path) -> dict[str, float]:
    import inspect

    import onnx
    import onnxruntime as ort
    import torch

    from modelexport import outputs, sidecar, sources, tags
    from modelexport.gate.worker import peak_rss_bytes
    from modelexport.inference import session
    from modelexport.verify import parity
    from modelexport.verify.run import against_pytorch

    started = time.perf_counter()
    if kind == "verify":
        against_pytorch(path)
        return {"seconds": time.perf_counter() - started, "peak_rss_bytes": peak_rss_bytes()}
    model = sources.load(sidecar.read(sidecar.sidecar_path(path)).source).model
    feed = session.feeds(tags.read(path, whole=True), [])
    tensors = {name: torch.from_numpy(array) for name, array in feed.items()}
    accepts = inspect.signature(model.forward).parameters
    constants = {"use_cache": False} if "use_cache" in accepts else {}
    if kind == "parity":  # as the export's own validation calls it
        parity.compare(path, model, [tensors], constants, 1e-4)
    else:
        marked = onnx.load(str(path))
        named = {o.name for o in marked.graph.output}
        for node in marked.graph.node:
            for value in node.output:
                if value and value not in named:
                    marked.graph.output.append(onnx.ValueInfoProto(name=value))
                    named.add(value)
        runner = ort.InferenceSession(marked.SerializeToString(),
                                      providers=["CPUExecutionProvider"])
        del marked
        got = runner.run(None, feed)
        with torch.no_grad():
            want = outputs.flatten(model(**tensors, **constants))
        for (_, tensor), array in zip(want, got, strict=False):
            float(abs(tensor.numpy() - array).max())
    return {"seconds": time.perf_counter() - started, "peak_rss_bytes": peak_rss_bytes()}


def export(folder: Path, layers: int) -> Path:
    path = folder / "bert-base.onnx"
    config = (f"hidden_size=768,num_hidden_layers={layers},num_attention_heads=12,"
              "intermediate_size=3072")
    subprocess.run([sys.executable, "-m", "modelexport", "export", "--model-type", "bert",
                    "--config", config, "--exporter", "torchscript", "-o", str(path)],
                   check=True, capture_output=True)
    return path


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": median(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return
    found: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory(prefix="verify-cost-") as tmp:
        path = export(Path(tmp), args.layers)
        for index in range(args.rounds):
            order = KINDS[index % 3:] + KINDS[:index % 3]
            for kind in order:
                proc = subprocess.run([sys.executable, __file__, "--child", kind, str(path)],
                                      capture_output=True, text=True, check=True)
                found[kind].append(json.loads(proc.stdout.splitlines()[-1]))
                print(f"round {index + 1} {kind}: {found[kind][-1]}", flush=True)
    summary: dict[str, Any] = {
        kind: {"seconds": spread([r["seconds"] for r in rows]),
               "peak_rss_mb": spread([r["peak_rss_bytes"] / 2**20 for r in rows])}
        for kind, rows in found.items()}
    base = summary["parity"]
    summary["ratios_to_parity"] = {
        kind: {"seconds": summary[kind]["seconds"]["median"] / base["seconds"]["median"],
               "peak_rss": summary[kind]["peak_rss_mb"]["median"]
               / base["peak_rss_mb"]["median"]}
        for kind in KINDS[1:]}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
