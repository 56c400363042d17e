"""``modelexport merge``: the results of ``check --shard`` runs as one results file."""

from __future__ import annotations

import argparse

from modelexport.gate import results


def run(args: argparse.Namespace) -> int:
    merged = results.merge([(path, results.load(path, kind="results")) for path in args.files])
    results.write(args.output, merged)
    print(f"{args.output}: {len(merged.models)} models from {len(args.files)} files")
    return 0
