"""Where inference memory goes, checked against what PyTorch says: per module, the weight
bytes `profile --memory` finds against the parameters each PyTorch module owns, and the
share of a run's activation bytes produced by some module's kernels.

    python bench/memory_attribution.py                 # bert, gpt2, vit, resnet x 2 exporters
    python bench/memory_attribution.py --models bert --exporters dynamo

The small configs of examples/architectures.yaml, exported by modelexport, profiled in
onnxruntime (ORT's default optimization, one thread, 5 runs). Every parameter and buffer is
first given values of its own, as trained weights have them: a config's initialisation
makes many tensors equal (every zero bias, every BatchNorm's unit scale), and exporters
store equal tensors once, read by several modules. A module "matches" when its weight
bytes equal its own parameters' bytes exactly. A BatchNorm that the exporter folded into
the convolution before it reads nothing, and that convolution gains a bias of one value
per channel: such a pair matches "after folding" when the convolution's bytes are its
parameters' plus that bias. A module whose nodes read its parameters and a few constants
the exporter folded (shapes, scalars: at most ``CONSTANT_BYTES`` more) matches "within
constants". The others are listed with both figures.

A benchmark, not a test: it reports, it asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from modelexport import structure
from modelexport.gate import manifest
from modelexport.htp.export import export_module
from modelexport.htp.options import ExportOptions
from modelexport.inference import memory, session
from modelexport.inference.records import Settings
from modelexport.sources import load

ROOT = Path(__file__).parent.parent
# What an exporter's folded constants add to a module besides its parameters: shapes and
# scalars of the ops it folded (at most 24 bytes a module in these eight exports).
CONSTANT_BYTES = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["bert", "gpt2", "vit", "resnet"])
    parser.add_argument("--exporters", nargs="*", default=["torchscript", "dynamo"])
    args = parser.parse_args()
    sources = {spec.name: spec.source
               for spec in manifest.load(ROOT / "examples" / "architectures.yaml").models}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            loaded = load(sources[name])
            model = distinct(loaded.model)
            owned = {path: sum(p.numel() * p.element_size()
                               for p in module.parameters(recurse=False))
                     for path, module in model.named_modules()}
            owned = {path: size for path, size in owned.items() if size}
            for exporter in args.exporters:
                path = Path(tmp) / f"{name}-{exporter}.onnx"
                export_module(model, loaded.config, path, ExportOptions(exporter=exporter),
                              sources[name], examples=loaded.examples)
                found, _ = session.run(path, Settings(5, 1, 1, "all"))
                result = memory.memory(found, structure.of_file(path))
                mine = {m.path: m.own_weight_bytes for m in result.modules if m.own_weight_bytes}
                differ = {p: (owned.get(p, 0), mine.get(p, 0)) for p in {*owned, *mine}
                          if owned.get(p, 0) != mine.get(p, 0)}
                folded = folded_pairs(model, differ)
                constants = {p for p, (had, got) in differ.items()
                             if 0 <= got - had <= CONSTANT_BYTES} - folded
                placed = 1 - result.unattributed_activation_bytes / (result.activation_bytes
                                                                     or 1)
                equal = [p for p in owned if p not in differ]
                rows.append((name, exporter, len(owned), len(equal),
                             len([p for p in owned if p not in differ or p in folded
                                  or p in constants]),
                             sum(owned.values()), sum(mine.values()), placed))
                rest = sorted((p, d) for p, d in differ.items()
                              if p not in folded and p not in constants)
                print(f"{name} {exporter}: {len(folded) // 2} BatchNorms folded; "
                      f"{len(constants)} modules with constants besides their parameters; "
                      f"differing otherwise {rest}", flush=True)
    print("\n| model | exporter | modules with parameters | their weight bytes equal | "
          f"equal after folding, within {CONSTANT_BYTES} B of constants | parameter bytes | "
          "weight bytes found | activations placed on a module |")
    print("|---|---|--:|--:|--:|--:|--:|--:|")
    for name, exporter, modules, equal, after, params, found_bytes, placed in rows:
        print(f"| {name} | {exporter} | {modules} | {equal} | {after} | {params:,} | "
              f"{found_bytes:,} | {placed:.1%} |")


def distinct(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with values of its own in every floating parameter and buffer (BatchNorm
    variances kept positive), so no two tensors are equal."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if tensor.is_floating_point():
                values = torch.rand(tensor.shape, generator=generator) * 0.1
                tensor.copy_(values + 0.5 if name.endswith("running_var") else values - 0.05)
    return model.eval()


def folded_pairs(model: torch.nn.Module, differ: dict[str, tuple[int, int]]) -> set[str]:
    """The modules of each BatchNorm that reads nothing in the file, and of the convolution
    beside it (a sibling) whose bytes are its parameters' plus one value per channel."""
    modules = dict(model.named_modules())
    pairs: set[str] = set()
    for path, (_, found) in differ.items():
        norm = modules.get(path)
        if found or not isinstance(norm, torch.nn.modules.batchnorm._BatchNorm):
            continue
        parent = path.rpartition(".")[0]
        bias = norm.num_features * norm.weight.element_size()
        for other, (owned, got) in differ.items():
            if other.rpartition(".")[0] == parent and \
                    isinstance(modules.get(other), torch.nn.modules.conv._ConvNd) and \
                    got == owned + bias:
                pairs |= {path, other}
    return pairs


if __name__ == "__main__":
    main()
