"""Compare stored RESULTS with BASELINE without exporting anything. As with check, a
BASELINE that does not exist yet makes every model new (and says so).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from modelexport.commands import Subcommands, reporting, subcommand


@dataclass(frozen=True)
class Args(reporting.ReportArgs):
    results: Path
    baseline: Path
    manifest: Path | None


def add_parser(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    compare = subcommand(commands, common, "compare", __doc__,
                         "verdict from stored results and baseline")
    compare.add_argument("results", type=Path)
    compare.add_argument("baseline", type=Path)
    compare.add_argument("--manifest", type=Path,
                         help="take thresholds and accepted regressions from this manifest")
    reporting.add_options(compare)
    compare.set_defaults(run=run, arguments=Args)


def run(args: Args) -> int:
    from modelexport import jsonfile
    from modelexport.commands import console
    from modelexport.gate import judge, manifest, results
    from modelexport.publish import deliver, report

    jsonfile.ensure_writable(*args.outputs())
    current = results.load(args.results, kind="results")
    loaded = manifest.load(args.manifest) if args.manifest else None
    judgement = judge.judge(current, args.baseline, judge.policies(loaded), args.allow_env_drift,
                            require_comparison=not args.allow_no_baseline)
    print(report.terminal(judgement.verdicts, judgement.notes, judgement.against), end="")
    console.announce(deliver.deliver(judgement, args.targets(args.results, args.baseline),
                                     loaded, os.environ))
    return args.exit_code(judgement)
