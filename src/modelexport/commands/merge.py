"""``modelexport merge``: the results of ``check --shard`` runs as one results file."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from modelexport.commands import Subcommands


@dataclass(frozen=True)
class Args:
    files: list[Path]
    output: Path


def add_parser(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    merge = commands.add_parser(
        "merge", parents=[common], help="merge shard results into one results file",
        description="Merge the results of check --shard runs; fails if a selected model is "
        "missing or appears twice.",
    )
    merge.add_argument("files", nargs="+", type=Path, metavar="RESULTS")
    merge.add_argument("-o", "--output", type=Path, required=True)
    merge.set_defaults(run=run, arguments=Args)


def run(args: Args) -> int:
    from modelexport.gate import results

    merged = results.merge([(path, results.load(path, kind="results")) for path in args.files])
    results.write(args.output, merged)
    print(f"{args.output}: {len(merged.models)} models from {len(args.files)} files")
    return 0
