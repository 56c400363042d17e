"""Merge the results of check --shard runs into one results file; fails if a selected model
is missing or appears twice.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from modelexport.commands import Subcommands, subcommand


@dataclass(frozen=True)
class Args:
    files: list[Path]
    output: Path


def add_parser(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    merge = subcommand(commands, common, "merge", __doc__,
                       "merge shard results into one results file")
    merge.add_argument("files", nargs="+", type=Path, metavar="RESULTS")
    merge.add_argument("-o", "--output", type=Path, required=True)
    merge.set_defaults(run=run, arguments=Args)


def run(args: Args) -> int:
    from modelexport.gate import results

    merged = results.merge([(path, results.load(path, kind="results")) for path in args.files])
    results.write(args.output, merged)
    print(f"{args.output}: {len(merged.models)} models from {len(args.files)} files")
    return 0
