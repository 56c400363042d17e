"""Manage the baseline: update writes RESULTS into BASELINE (atomically); models that
failed in RESULTS keep their previous baseline entry.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from modelexport.commands import Subcommands, subcommand


@dataclass(frozen=True)
class Args:
    results: Path
    baseline: Path


def add_parser(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    baseline = commands.add_parser("baseline", parents=[common], help="manage the baseline")
    baseline_commands = baseline.add_subparsers(dest="baseline_command", required=True)
    update = subcommand(baseline_commands, common, "update", __doc__,
                        "make results the new baseline")
    update.add_argument("--results", type=Path, required=True,
                        help="the results of a check run to make the baseline")
    update.add_argument("--baseline", type=Path, required=True,
                        help="the baseline file to write (made if it is not there)")
    update.set_defaults(run=run, arguments=Args)


def run(args: Args) -> int:
    from modelexport.gate import results

    results.write_baseline(results.load(args.results, kind="results"), args.baseline)
    print(f"baseline written: {args.baseline}")
    return 0
