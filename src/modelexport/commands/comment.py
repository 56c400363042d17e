"""Create or update this gate's PR comment on the pull request recorded in RESULTS by the
check run that measured it (the fork-safe report job). That job holds a token that may
write and runs on what a pull request's own job measured, so nothing of that job's files is
posted as it is: the report is rendered here from RESULTS (checked against its schema, every
string escaped) and judged against BASELINE and MANIFEST as this job has them; the comment's
key comes from these arguments. Needs GITHUB_TOKEN and GITHUB_REPOSITORY in the
environment.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from modelexport.commands import Subcommands, subcommand
from modelexport.errors import UsageError


@dataclass(frozen=True)
class Args:
    results: Path
    baseline: Path | None
    manifest: Path | None
    comment_key: str | None


def add_parser(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    comment = subcommand(commands, common, "comment", __doc__,
                         "post the report of stored results as the sticky PR comment")
    comment.add_argument("--results", type=Path, required=True)
    comment.add_argument("--baseline", type=Path,
                         help="judge the results against this baseline (absent: every model "
                         "is new, and the comment says so)")
    comment.add_argument("--manifest", type=Path,
                         help="thresholds and accepted regressions from this manifest")
    comment.add_argument("--comment-key", metavar="KEY",
                         help="which sticky comment (default: the manifest and shard)")
    comment.set_defaults(run=run, arguments=Args)


def run(args: Args) -> int:
    from modelexport.commands import console
    from modelexport.commands.check import BASELINE_NAME
    from modelexport.gate import judge, manifest, results
    from modelexport.github import comment
    from modelexport.publish import deliver, formats, report

    if args.results.is_symlink():
        raise UsageError(f"--results {args.results}: a link; the report job reads no link "
                         "from an artifact")
    current = results.load(args.results, kind="results")
    loaded = manifest.load(args.manifest) if args.manifest else None
    judgement = judge.judge(current, args.baseline, judge.policies(loaded), False)
    judgement.notes.append(
        "judged by the report job: the measured results against "
        f"{args.baseline or 'no baseline'} and {args.manifest or 'default thresholds'} as "
        "this job has them")
    hint = report.update_hint(str(args.results), str(args.baseline or BASELINE_NAME))
    key = args.comment_key or deliver.comment_key(
        str(args.manifest or "modelexport"), current.shard)
    console.announce([comment.post(os.environ, formats.MARKDOWN.render(judgement, hint), key,
                                   current.pull_request)])
    return 0
