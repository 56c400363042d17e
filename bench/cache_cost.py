"""What `modelexport export --task text-generation-with-past` costs against what a user writes
with torch.onnx for the same cache export, as each is run: one fresh process per export,
alternating (bare, ours, bare, ours ...), side by side in one run.

    python bench/cache_cost.py --rounds 5
    python bench/cache_cost.py --rounds 5 --config hidden_size=512,num_hidden_layers=4

modelexport side: `modelexport export --model-type llama --config ... --task
text-generation-with-past -o FILE` (no --validate).
Bare side: a script that builds the same model, gives it the forward a user has to write
(the cache as plain tensors, rebuilt as a transformers DynamicCache inside the call: the
exporters take no cache object) and calls the documented
`torch.onnx.export(model, (), FILE, kwargs=..., dynamo=True, dynamic_shapes=...)` with the
inputs and dynamic axes modelexport's sidecar records.
Printed: min / median / max wall seconds of each side and of the per-round ratio.
Target: median ratio <= 1.05. A benchmark, not a test: it asserts nothing.
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

CONFIG = ("hidden_size=512,num_hidden_layers=4,num_attention_heads=8,num_key_value_heads=4,"
          "intermediate_size=1408,vocab_size=32000")

BARE = '''
import json, sys
import torch, transformers
from transformers.cache_utils import DynamicCache, DynamicLayer
spec = json.loads(sys.argv[1])
torch.manual_seed(0)
config = transformers.AutoConfig.for_model("llama", **spec["config"])
model = transformers.AutoModelForCausalLM.from_config(config).eval()
inner = model.forward

def forward(input_ids, attention_mask, position_ids, past_key_values):
    cache = DynamicCache()
    cache.layers = []
    for entry in past_key_values:
        layer = DynamicLayer()
        layer.keys, layer.values = entry["key"], entry["value"]
        layer.device, layer.is_initialized = layer.keys.device, True
        cache.layers.append(layer)
    out = inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                cache=cache, use_cache=True)
    return {"logits": out.logits,
            "present": [{"key": l.keys, "value": l.values} for l in out.cache.layers]}

model.forward = forward
tensors, past, dims = {}, [], {}
for i in spec["inputs"]:
    dtype = getattr(torch, i["dtype"])
    value = (torch.rand(i["shape"]) if dtype.is_floating_point
             else torch.ones(i["shape"], dtype=dtype))
    axes = {int(a): dims.setdefault(d, torch.export.Dim(d))
            for a, d in spec["axes"].get(i["name"], {}).items()}
    if i["name"].startswith("past_key_values."):
        _, layer, kind = i["name"].split(".")
        if kind == "key":
            past.append(({}, {}))
        past[-1][0][kind] = value
        past[-1][1][kind] = axes
    else:
        tensors[i["name"]] = (value, axes)
kwargs = {n: v for n, (v, _) in tensors.items()} | {"past_key_values": [v for v, _ in past]}
shapes = {n: a for n, (_, a) in tensors.items()} | {"past_key_values": [a for _, a in past]}
torch.onnx.export(model, (), spec["output"], kwargs=kwargs, dynamo=True,
                  opset_version=spec["opset"], dynamic_shapes=shapes)
'''


def run(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def spread(values: list[float], digits: int = 2) -> str:
    return " / ".join(f"{v:.{digits}f}" for v in (min(values), statistics.median(values),
                                                  max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--config", default=CONFIG)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        ours = [sys.executable, "-m", "modelexport", "export", "--model-type", "llama",
                "--config", args.config, "--task", "text-generation-with-past",
                "-o", str(work / "ours.onnx")]
        run(ours)  # once first: the sidecar the bare side copies, and warm file caches
        sidecar = json.loads((work / "ours.hierarchy.json").read_text())
        spec = {"config": sidecar["source"]["config"], "inputs": sidecar["inputs"],
                "opset": sidecar["export"]["opset"], "output": str(work / "bare.onnx"),
                "axes": _axes(work / "ours.onnx")}
        bare = [sys.executable, "-c", BARE, json.dumps(spec)]
        times: dict[str, list[float]] = {"bare": [], "ours": []}
        for _ in range(args.rounds):
            for side, command in (("bare", bare), ("ours", ours)):
                times[side].append(run(command))
        ratios = [o / b for o, b in zip(times["ours"], times["bare"], strict=True)]
        print(f"llama {args.config}: bare {spread(times['bare'])} s, modelexport "
              f"{spread(times['ours'])} s, ratio {spread(ratios, 3)} "
              f"(min / median / max of {args.rounds} rounds)")


def _axes(path: Path) -> dict[str, dict[int, str]]:
    """The dynamic axes of the export's inputs, by the names its graph gives them."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return {value.name: {i: d.dim_param for i, d in enumerate(value.type.tensor_type.shape.dim)
                         if d.dim_param} for value in graph.input}


if __name__ == "__main__":
    main()
