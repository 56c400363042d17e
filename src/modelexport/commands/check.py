"""The gate: export every model of MANIFEST (each in its own process), measure, compare
with the baseline and fail on a regression. With --against (a checkout of the pull
request's base) or --against-ref (a commit), the base's models are measured beside the
head's, in turns, and compared in pairs: no stored baseline, no other machine. Exit 0 pass,
1 regression or failure, 2 usage or manifest error.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelexport.commands import Subcommands, reporting, stop_on_sigterm, subcommand
from modelexport.errors import UsageError

if TYPE_CHECKING:
    from modelexport.gate.basetree import BaseTree
    from modelexport.gate.manifest import Manifest, ModelSpec
    from modelexport.gate.results import Shard

# The one folder a run writes to unless told otherwise (the action's output-dir too).
DEFAULT_RESULTS = Path("modelexport-out") / "results.json"
REPEATS_LIMIT = 100  # as the manifest's schema allows
BASELINE_NAME = "modelexport-baseline.json"


@dataclass(frozen=True)
class Args(reporting.ReportArgs):
    manifest: Path
    baseline: Path | None
    results: Path
    select: list[str]
    shard: str | None
    update_baseline: bool
    repeats: int | None
    threshold: float | None
    against: Path | None
    against_ref: str | None

    @property
    def baseline_file(self) -> Path:
        """--baseline, else the baseline beside the manifest (where the action keeps it)."""
        return self.baseline or self.manifest.parent / BASELINE_NAME


def add_parser(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    check = subcommand(commands, common, "check", __doc__,
                       "the gate: export a manifest's models, compare, verdict")
    check.add_argument("manifest", type=Path)
    check.add_argument("--baseline", type=Path,
                       help=f"baseline JSON to compare with (default: {BASELINE_NAME} beside "
                       "the manifest)")
    check.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                       help="where to write this run's results (default: %(default)s)")
    check.add_argument("--select", action="append", default=[], metavar="TAG",
                       help="only models with this tag (repeatable)")
    check.add_argument("--shard", metavar="I/N",
                       help="run only shard I of N, balanced by the baseline's durations")
    check.add_argument("--update-baseline", action="store_true",
                       help="write this run's results into the baseline afterwards")
    check.add_argument("--repeats", type=int, metavar="N",
                       help="measured exports per model, for every model (default: manifest)")
    check.add_argument("--threshold", type=float, metavar="FRACTION",
                       help="allowed slowdown of the median for every model, e.g. 0.10 "
                       "(default: manifest, else 0.10)")
    base = check.add_mutually_exclusive_group()
    base.add_argument("--against", type=Path, metavar="BASE_TREE",
                      help="a checkout of the pull request's base (e.g. from git worktree "
                      "add): measure its models beside these, in pairs")
    base.add_argument("--against-ref", metavar="REF",
                      help="as --against, with a checkout of this commit made (and removed) "
                      "from the manifest's repository")
    reporting.add_options(check)
    check.set_defaults(run=run, arguments=Args)


def run(args: Args) -> int:
    from modelexport.commands import console
    from modelexport.errors import ModelExportError
    from modelexport.gate import judge, results, runner, sandbox
    from modelexport.github import actions
    from modelexport.publish import deliver, report

    # Before anything runs: the tokens live on in this process's memory only, where used.
    secrets = sandbox.seal()
    loaded, specs, shard = _plan(args)
    stop_on_sigterm()
    try:
        with _base(args, loaded) as base:
            done = runner.run_manifest(loaded, specs, args.results,
                                       console.ProgressPrinter(), shard,
                                       actions.pull_request(os.environ), _hub_token(secrets),
                                       base)
    except KeyboardInterrupt:
        print(f"modelexport: interrupted; finished models are in {args.results}",
              file=sys.stderr)
        return 130
    current = done.results
    judgement = judge.judge(current, args.baseline_file, judge.policies(loaded),
                            args.allow_env_drift, scope={spec.name for spec in specs},
                            require_comparison=not (args.allow_no_baseline
                                                    or args.update_baseline))
    print(f"results: {args.results}")
    print(report.terminal(judgement.verdicts, judgement.notes, judgement.against), end="")
    console.announce(deliver.deliver(judgement, args.targets(args.results, args.baseline_file),
                                     loaded, {**os.environ, **secrets}))
    if done.unsaved:
        # The report above is all that is left of this run: it must not pass, nor become
        # a baseline.
        raise ModelExportError(f"--results {args.results}: not saved ({done.unsaved}); "
                               "the report above is this run's only record")
    if args.update_baseline:
        results.write_baseline(current, args.baseline_file)
        print(f"baseline written: {args.baseline_file}")
    return args.exit_code(judgement)


def _plan(args: Args) -> tuple[Manifest, list[ModelSpec], Shard | None]:
    """What this run exports, once everything that can be refused before it is."""
    from modelexport.commands import console
    from modelexport.errors import MissingExtraError
    from modelexport.gate import manifest, sandbox, shards
    from modelexport.github import actions
    from modelexport.publish import report

    _refuse_meaningless(args)
    _refuse_unwritable(args)
    if importlib.util.find_spec("torch") is None:  # say so once, not once per model
        raise MissingExtraError("torch")
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if workspace and sandbox.persisted_credentials(Path(workspace)):
        console.announce([actions.Annotation(
            "warning", "actions/checkout left its token in .git/config, where the models' "
            "own code can read it: check out with persist-credentials: false")])
    loaded = manifest.load(args.manifest).overridden(repeats=args.repeats,
                                                     time_threshold=args.threshold)
    console.announce(report.located("warning", loaded.warnings))
    specs = loaded.select(args.select)
    if not specs:
        raise UsageError(f"{args.manifest}: no model has tag(s) "
                         f"{', '.join(map(repr, args.select))}")
    if not args.shard:
        return loaded, specs, None
    planned, shard = shards.plan(specs, args.shard, args.baseline_file)
    return loaded, planned, shard


@contextlib.contextmanager
def _base(args: Args, head: Manifest) -> Iterator[BaseTree | None]:
    """The base to measure beside the head, if asked for (a checkout made from a ref is
    removed afterwards)."""
    from modelexport.gate import basetree

    if args.against is not None:
        yield basetree.load(args.against, head, args.select)
    elif args.against_ref is not None:
        with basetree.worktree(args.against_ref, head) as (tree, commit):
            yield basetree.load(tree, head, args.select, f"--against-ref {args.against_ref}",
                                commit)
    else:
        yield None


def _refuse_meaningless(args: Args) -> None:
    if args.repeats is not None and args.repeats < 1:
        raise UsageError(f"--repeats {args.repeats}: needs at least 1")
    if args.threshold is not None and not 0 <= args.threshold < math.inf:
        raise UsageError(f"--threshold {args.threshold:g}: a slowdown, e.g. 0.10 for +10 %")
    if args.results.absolute() == args.baseline_file.absolute():
        raise UsageError(f"--results {args.results} is the baseline too: this run would "
                         "overwrite the baseline it is compared with")
    if args.repeats is not None and args.repeats > REPEATS_LIMIT:
        raise UsageError(f"--repeats {args.repeats}: at most {REPEATS_LIMIT}")


def _refuse_unwritable(args: Args) -> None:
    """Where this run writes must be writable before the first model is exported: a run
    that measured for an hour and then cannot save is an hour lost."""
    from modelexport import jsonfile
    from modelexport.github import actions

    summary = os.environ.get("GITHUB_STEP_SUMMARY") if actions.in_actions(os.environ) else None
    jsonfile.ensure_writable(("--results", args.results), *args.outputs(),
                             ("--baseline", args.baseline_file if args.update_baseline else None),
                             ("$GITHUB_STEP_SUMMARY", Path(summary) if summary else None))


def _hub_token(secrets: dict[str, str]) -> str | None:
    return secrets.get("HF_TOKEN") or secrets.get("HUGGING_FACE_HUB_TOKEN")
