"""What `modelexport export` costs against the documented torch.onnx.export, as a user runs
each: one fresh process per export, alternating, side by side in one run.

    python bench/whole_process.py --rounds 7                # 4 full-size models x 2 exporters
    python bench/whole_process.py --rounds 7 --models bert --exporters dynamo
    python bench/whole_process.py --rounds 5 --source folder     # from save_pretrained folders

modelexport side: `modelexport export --model-type M --exporter E -o FILE` (random weights
from the full-size default config, dynamic batch and sequence axes: the defaults); with
`--source folder`, `modelexport export FOLDER ...` of a folder that `save_pretrained` wrote
(the same model, saved once before the rounds).
Bare side: a script that builds the same model from its config (`--source folder`: loads it
with `AutoModel.from_pretrained(FOLDER)`) and calls the documented
`torch.onnx.export` with what modelexport's sidecar records of its own export: the same
input names, shapes and dtypes, the same dynamic axes, the same opset, `f=FILE` (for dynamo
that is `torch.onnx.export(model, (), FILE, kwargs=..., dynamo=True, opset_version=...,
dynamic_shapes=...)`, which writes the weights to a separate data file by default).
Each side's wall time and its own peak RSS (wait4) per round; printed per pair of model and
exporter: min / median / max of each side, of the ratio, and the ratio's 95 % interval.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modelexport.stats import median_interval

MODELS = {"resnet-50": "resnet", "bert-base": "bert", "vit-base": "vit", "gpt2": "gpt2"}

BARE = '''
import inspect, json, sys
import torch, transformers
spec = json.loads(sys.argv[1])
torch.manual_seed(0)
if spec["folder"]:
    model = transformers.AutoModel.from_pretrained(spec["folder"]).eval()
else:
    config = transformers.AutoConfig.for_model(spec["model_type"])
    model = transformers.AutoModel.from_config(config).eval()
tensors = {}
for i in spec["inputs"]:
    dtype = getattr(torch, i["dtype"])
    tensors[i["name"]] = (torch.rand(i["shape"]) if dtype.is_floating_point
                          else torch.ones(i["shape"], dtype=dtype))
constants = {"use_cache": False} if "use_cache" in inspect.signature(
    model.forward).parameters else {}
axes = {name: {int(a): d for a, d in dims.items()} for name, dims in spec["axes"].items()}
names = list(tensors)
if spec["exporter"] == "dynamo":
    shapes = {n: axes.get(n) for n in (*tensors, *constants)} if axes else None
    torch.onnx.export(model, (), spec["output"], kwargs={**tensors, **constants}, dynamo=True,
                      opset_version=spec["opset"], dynamic_shapes=shapes)
else:
    # transformers 5 models take no positional inputs under the TorchScript exporter
    # ("got multiple values for argument 'use_cache'"): the wrapper a user writes.
    class Keywords(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            return self.inner(**dict(zip(names, args)), **constants)

    torch.onnx.export(Keywords(model), tuple(tensors.values()), spec["output"], dynamo=False,
                      opset_version=spec["opset"], input_names=names,
                      dynamic_axes=axes or None)
'''


def run(command: list[str]) -> tuple[float, int]:
    """Wall seconds and the process's own peak RSS in bytes."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        sys.exit(f"{command[:4]} failed: {process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss * 1024


SAVE = '''
import sys, torch, transformers
torch.manual_seed(0)
config = transformers.AutoConfig.for_model(sys.argv[1])
transformers.AutoModel.from_config(config).save_pretrained(sys.argv[2])
'''


def bare_spec(sidecar: Path, model_type: str, output: Path, folder: Path | None) -> dict:
    """What the bare script needs, from modelexport's sidecar and ONNX file."""
    import onnx

    record = json.loads(sidecar.read_text())
    graph = onnx.load(str(sidecar.with_name(record["export"]["onnx_file"])),
                      load_external_data=False).graph
    axes = {i.name: {str(a): d.dim_param for a, d in enumerate(i.type.tensor_type.shape.dim)
                     if d.dim_param} for i in graph.input}
    export = record["export"]
    return {"model_type": model_type, "folder": str(folder) if folder else None,
            "inputs": record["inputs"], "opset": export["opset"],
            "exporter": export["exporter"], "output": str(output),
            "axes": {name: dims for name, dims in axes.items() if dims}}


def spread(values: list[float], digits: int = 2) -> str:
    return " / ".join(f"{v:.{digits}f}" for v in (min(values), statistics.median(values),
                                                   max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--exporters", nargs="*", default=["torchscript", "dynamo"])
    parser.add_argument("--source", choices=["config", "folder"], default="config",
                        help="build each model from its config, or load a saved folder")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.models:
            model_type = MODELS.get(name, name)
            folder = work / name if args.source == "folder" else None
            if folder:
                run([sys.executable, "-c", SAVE, model_type, str(folder)])
            source = [str(folder)] if folder else ["--model-type", model_type]
            for exporter in args.exporters:
                ours = [sys.executable, "-m", "modelexport", "export", *source, "--exporter",
                        exporter, "-o", str(work / "ours.onnx")]
                run(ours)  # once first: the sidecar the bare side copies, and warm caches
                spec = bare_spec(work / "ours.hierarchy.json", model_type, work / "bare.onnx",
                                 folder)
                bare = [sys.executable, "-c", BARE, json.dumps(spec)]
                times: dict[str, list[float]] = {"bare": [], "ours": []}
                peaks: dict[str, list[int]] = {"bare": [], "ours": []}
                for _ in range(args.rounds):
                    for side, command in (("bare", bare), ("ours", ours)):
                        seconds, peak = run(command)
                        times[side].append(seconds)
                        peaks[side].append(peak)
                ratios = [o / b for o, b in zip(times["ours"], times["bare"], strict=True)]
                memory = [o / b for o, b in zip(peaks["ours"], peaks["bare"], strict=True)]
                interval = median_interval(ratios)
                rows.append((name, exporter, times, ratios, interval, memory))
                print(f"{name} {exporter}: bare {spread(times['bare'])} s, modelexport "
                      f"{spread(times['ours'])} s, ratio {spread(ratios)} "
                      f"(95 % interval {interval}), peak RSS ratio {spread(memory)}",
                      flush=True)
    print("\n| model | exporter | bare s | modelexport s | ratio (min / median / max) | "
          "ratio 95 % interval | peak RSS ratio (median) |\n|---|---|---|---|---|---|---|")
    for name, exporter, times, ratios, interval, memory in rows:
        shown = f"{interval[0]:.2f} .. {interval[1]:.2f}" if interval else "too few rounds"
        print(f"| {name} | {exporter} | {spread(times['bare'])} | {spread(times['ours'])} | "
              f"{spread(ratios)} | {shown} | {statistics.median(memory):.2f} |")


if __name__ == "__main__":
    main()
