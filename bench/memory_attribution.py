"""Where inference memory goes, checked against what PyTorch says: per module, the weight
bytes `profile --memory` finds against the parameters each PyTorch module owns, and the
share of a run's activation bytes produced by some module's kernels.

    python bench/memory_attribution.py                 # bert, gpt2, vit, resnet x 2 exporters
    python bench/memory_attribution.py --models bert --exporters dynamo

The small configs of examples/architectures.yaml, exported by modelexport, profiled in
onnxruntime (ORT's default optimization, one thread, 5 runs). A module "matches" when its
weight bytes equal its own parameters' bytes exactly; the others are listed with both
figures (an exporter that folds a BatchNorm into its convolution moves bytes between them).

A benchmark, not a test: it reports, it asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from modelexport import structure
from modelexport.gate import manifest
from modelexport.htp.export import export
from modelexport.htp.options import ExportOptions
from modelexport.inference import memory, session
from modelexport.inference.records import Settings
from modelexport.sources import load

ROOT = Path(__file__).parent.parent


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
            model = load(sources[name]).model
            owned = {path: sum(p.numel() * p.element_size()
                               for p in module.parameters(recurse=False))
                     for path, module in model.named_modules()}
            owned = {path: size for path, size in owned.items() if size}
            for exporter in args.exporters:
                path = Path(tmp) / f"{name}-{exporter}.onnx"
                export(sources[name], path, ExportOptions(exporter=exporter))
                found, _ = session.run(path, Settings(5, 1, 1, "all"))
                result = memory.memory(found, structure.of_file(path))
                mine = {m.path: m.own_weight_bytes for m in result.modules if m.own_weight_bytes}
                differ = {p: (owned.get(p, 0), mine.get(p, 0)) for p in {*owned, *mine}
                          if owned.get(p, 0) != mine.get(p, 0)}
                placed = 1 - result.unattributed_activation_bytes / (result.activation_bytes
                                                                     or 1)
                rows.append((name, exporter, len(owned), len(owned) - len(
                    [p for p in owned if p in differ]), sum(owned.values()),
                    sum(mine.values()), placed))
                print(f"{name} {exporter}: differing modules "
                      f"{sorted(differ.items())[:4]}{' ...' if len(differ) > 4 else ''}",
                      flush=True)
    print("\n| model | exporter | modules with parameters | their weight bytes equal | "
          "parameter bytes | weight bytes found | activations placed on a module |")
    print("|---|---|--:|--:|--:|--:|--:|")
    for name, exporter, modules, equal, params, found_bytes, placed in rows:
        print(f"| {name} | {exporter} | {modules} | {equal} | {params:,} | {found_bytes:,} | "
              f"{placed:.1%} |")


if __name__ == "__main__":
    main()
