"""``modelexport baseline update``: make stored results the baseline."""

from __future__ import annotations

import argparse

from modelexport.gate import results


def run(args: argparse.Namespace) -> int:
    results.write_baseline(results.load(args.results, kind="results"), args.baseline)
    print(f"baseline written: {args.baseline}")
    return 0
