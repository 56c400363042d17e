"""``modelexport comment``: post a report as the sticky comment on the pull request the
results were measured for (the fork-safe ``report`` mode)."""

from __future__ import annotations

import argparse
import os

from modelexport.commands import console
from modelexport.errors import UsageError
from modelexport.gate import results
from modelexport.publish import deliver, github


def run(args: argparse.Namespace) -> int:
    current = results.load(args.results, kind="results")
    try:
        body = args.report.read_text("utf-8")
    except OSError as exc:
        raise UsageError(f"{args.report}: cannot read: {exc.strerror}") from exc
    key = args.comment_key or deliver.comment_key(current)
    console.announce([github.comment(os.environ, body, key, current.pull_request)])
    return 0
