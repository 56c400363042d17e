"""``modelexport comment``: post a report as the sticky comment on the pull request the
results were measured for (the fork-safe ``report`` mode)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from modelexport.commands import Subcommands


@dataclass(frozen=True)
class Args:
    report: Path
    results: Path
    comment_key: str | None


def add_parser(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    comment = commands.add_parser(
        "comment", parents=[common], help="post a markdown report as the sticky PR comment",
        description="Create or update this gate's PR comment with REPORT (markdown), on the "
        "pull request recorded in RESULTS by the check run that wrote both (the fork-safe "
        "report job). Needs GITHUB_TOKEN and GITHUB_REPOSITORY in the environment.",
    )
    comment.add_argument("report", type=Path, metavar="REPORT")
    comment.add_argument("--results", type=Path, required=True)
    comment.add_argument("--comment-key", metavar="KEY",
                         help="which sticky comment (default: the results' manifest and shard)")
    comment.set_defaults(run=run, arguments=Args)


def run(args: Args) -> int:
    from modelexport.commands import console
    from modelexport.errors import UsageError
    from modelexport.gate import results
    from modelexport.github import comment
    from modelexport.publish import deliver

    current = results.load(args.results, kind="results")
    try:
        body = args.report.read_text("utf-8")
    except OSError as exc:
        raise UsageError(f"{args.report}: cannot read: {exc.strerror}") from exc
    key = args.comment_key or deliver.comment_key(current)
    console.announce([comment.post(os.environ, body, key, current.pull_request)])
    return 0
