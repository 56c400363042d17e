"""``modelexport compare``: a verdict from stored results and baseline, exporting nothing."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from modelexport.commands import console
from modelexport.gate import judge, manifest, results
from modelexport.publish import deliver, report


def run(args: argparse.Namespace) -> int:
    current = results.load(args.results, kind="results")
    loaded = manifest.load(args.manifest) if args.manifest else None
    judgement = judge.judge(current, args.baseline, judge.policies(loaded), args.allow_env_drift)
    print(report.terminal(judgement.verdicts, judgement.notes), end="")
    console.announce(deliver.publish(judgement, targets(args, args.results), loaded,
                                     os.environ))
    return 1 if judgement.failed else 0


def targets(args: argparse.Namespace, results_path: Path) -> deliver.Targets:
    """The report options ``check`` and ``compare`` share."""
    return deliver.Targets(results_path, args.baseline, args.report_md, args.report_json,
                           args.comment, args.comment_key)
