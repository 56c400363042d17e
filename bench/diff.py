"""How long ``modelexport diff`` takes: the whole command on real files, and the pure diff
of two large summaries.

    python bench/diff.py OLD NEW            # e.g. two bert-base sidecars; 7 runs each
    python bench/diff.py --modules 2000     # two synthetic 2,000-module summaries

A benchmark, not a test: it asserts nothing. Whole-command runs are fresh processes, as a
user runs them (interpreter start and imports included); min / median / max seconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from modelexport import diff
from modelexport.onnxfile import TensorSig
from modelexport.structure import ModuleStructure, Structure


def synthetic(modules: int, variant: int) -> Structure:
    """``modules`` modules in layers of 20, every fifth layer's attention changed by
    ``variant``: a large diff with folding to do."""
    entries = {}
    for i in range(modules):
        layer, block = divmod(i, 20)
        ops = {"MatMul": 2, "Add": 1, "Softmax": 1 if variant == 0 or layer % 5 else 0}
        entries[f"encoder.layer.{layer}.block.{block}"] = ModuleStructure(
            "Block", sum(ops.values()), ops, 4096 * (1 + variant * (layer % 3 == 0)))
    sig = (TensorSig("input_ids", "int64", ("batch", "sequence")),)
    return Structure(sig, sig, 20, 10, sum(m.nodes for m in entries.values()), {}, 0, entries)


def spread(values: list[float]) -> str:
    return f"{min(values):.3f} / {statistics.median(values):.3f} / {max(values):.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", metavar="FILE")
    parser.add_argument("--modules", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if args.files:
        walls = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "modelexport", "diff", *args.files],
                           capture_output=True, check=False)
            walls.append(time.perf_counter() - started)
        print(f"modelexport diff {' '.join(args.files)}: {spread(walls)} (min / median / max)")
    before, after = synthetic(args.modules, 0), synthetic(args.modules, 1)
    walls = []
    for _ in range(args.runs):
        started = time.perf_counter()
        found = diff.diff(before, after)
        walls.append(time.perf_counter() - started)
    print(f"diff of two {args.modules}-module summaries ({len(found.modules)} rows after "
          f"folding): {spread(walls)}")
    empty = Structure(before.inputs, before.outputs, 20, 10, 0, {}, 0, {})
    walls = []
    for _ in range(args.runs):
        started = time.perf_counter()
        diff.diff(empty, before)
        walls.append(time.perf_counter() - started)
    print(f"diff of no modules against {args.modules} new ones: {spread(walls)}")


if __name__ == "__main__":
    main()
