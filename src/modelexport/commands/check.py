"""The gate: export every model of MANIFEST (each in its own process), measure, compare
with the baseline and fail on a regression. With --against (a checkout of the pull
request's base) or --against-ref (a commit), the base's models are measured beside the
head's, in turns, and compared in pairs: no stored baseline, no other machine.
--compare-with auto compares with the stored baseline where it was measured in this
environment, confirming a timing regression beside the base before it fails, and measures
the base beside the head where it was not. Exit 0 pass, 1 regression or failure, 2 usage
or manifest error.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelexport.commands import Subcommands, reporting, stop_on_sigterm, subcommand
from modelexport.errors import UsageError

if TYPE_CHECKING:
    from modelexport.gate.basetree import Source
    from modelexport.gate.judge import Judgement
    from modelexport.gate.manifest import Manifest, ModelSpec
    from modelexport.gate.results import Results, Shard
    from modelexport.gate.runner import Run

# The one folder a run writes to unless told otherwise (the action's output-dir too).
DEFAULT_RESULTS = Path("modelexport-out") / "results.json"
REPEATS_LIMIT = 100  # as the manifest's schema allows
BASELINE_NAME = "modelexport-baseline.json"
COMPARE_WITH = ("auto", "base", "baseline")


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
    compare_with: str | None
    keep: Path | None

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
    check.add_argument("--keep", type=Path, metavar="DIR",
                       help="keep each model's export, sidecar, profile and Model Explorer "
                       "overlay in DIR/MODEL (the base's in DIR/MODEL@base)")
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
    check.add_argument("--compare-with", choices=COMPARE_WITH,
                       help="baseline: the stored baseline; base: the base measured beside "
                       "the head; auto: the baseline where it was measured in this "
                       "environment (a timing regression confirmed beside the base), else "
                       "the base. The base is --against, --against-ref, or in GitHub "
                       "Actions the pull request's (default: base with --against or "
                       "--against-ref, else baseline)")
    reporting.add_options(check)
    check.set_defaults(run=run, arguments=Args)


def run(args: Args) -> int:
    from modelexport.errors import ModelExportError
    from modelexport.gate import sandbox, spawn

    # Before anything runs: the tokens live on in this process's memory only, where used.
    secrets = sandbox.seal()
    _refuse(args)
    stop_on_sigterm()
    notes: list[str] = []
    try:
        # First: the fork server's imports (2-3 s) overlap all that comes before the first
        # model, this process's own imports too.
        with spawn.workers() as pool:
            from modelexport.commands import console
            from modelexport.gate import basetree, results, runner
            from modelexport.github import actions
            from modelexport.publish import deliver, report

            loaded, specs, shard = _plan(args)
            beside, confirming = _comparison(args, loaded, notes)
            measure = functools.partial(runner.run_manifest, progress=console.ProgressPrinter(),
                                        pull_request=actions.pull_request(os.environ),
                                        hub_token=_hub_token(secrets), keep=args.keep,
                                        pool=pool)
            if beside is not None:
                with basetree.opened(beside, loaded, args.select) as base:
                    done = measure(loaded, specs, args.results, shard=shard, base=base)
            else:
                done = measure(loaded, specs, args.results, shard=shard)
            judgement = _judge(args, loaded, specs, done.results, notes)
            if confirming is not None:
                _confirm(args, loaded, specs, confirming, judgement, measure)
    except KeyboardInterrupt:
        print(f"modelexport: interrupted; finished models are in {args.results}",
              file=sys.stderr)
        return 130
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
        results.write_baseline(done.results, args.baseline_file)
        print(f"baseline written: {args.baseline_file}")
    return args.exit_code(judgement)


def _judge(args: Args, loaded: Manifest, specs: list[ModelSpec], current: Results,
           notes: list[str]) -> Judgement:
    from modelexport.gate import judge

    judgement = judge.judge(current, args.baseline_file, judge.policies(loaded),
                            args.allow_env_drift, scope={spec.name for spec in specs},
                            require_comparison=not (args.allow_no_baseline
                                                    or args.update_baseline))
    judgement.notes[:0] = notes
    return judgement


def _comparison(args: Args, head: Manifest, notes: list[str]
                ) -> tuple[Source | None, Source | None]:
    """The base to measure beside the head, or else the base that confirms a timing
    regression against the stored baseline (at most one of the two; neither: the stored
    baseline alone)."""
    from modelexport.gate import basetree
    from modelexport.github import actions

    wanted = args.compare_with or ("base" if args.against or args.against_ref
                                   else "baseline")
    if wanted == "baseline":
        return None, None
    try:
        source = basetree.given(args.against, args.against_ref, head)
    except UsageError:
        if wanted == "base":
            raise
        source = None  # auto: a branch with no upstream yet is no error
    why = f"{args.against_ref}: no such commit"
    if source is None and args.against_ref is None:
        source, why = basetree.of_pull_request(head, actions.pull_request_base(os.environ))
    if source is None:
        notes.append(f"no base to measure beside the head ({why}): compared with the stored "
                     "baseline alone")
        return None, None
    if wanted == "auto" and _baseline_fits(args.baseline_file):
        notes.append("the stored baseline was measured in this environment: compared with "
                     "it; a timing regression is confirmed beside the base before it fails")
        return None, source
    return source, None


def _baseline_fits(path: Path) -> bool:
    """The stored baseline was measured in this environment (tool, libraries, machine)."""
    from modelexport.environment import Environment
    from modelexport.gate import results

    try:
        stored = results.load(path, kind="baseline") if path.is_file() else None
    except UsageError:
        return False  # the judge says why, once
    return stored is not None and not Environment.here().drift(stored.environment)


def _confirm(args: Args, loaded: Manifest, specs: list[ModelSpec], source: Source,
             judgement: Judgement, measure: Callable[..., Run]) -> None:
    """Measure the models that regressed on a timing beside the base, and keep only the
    regressions the pairs show too (``confirm``). Their results go beside --results."""
    from modelexport.gate import basetree, confirm, judge

    names = confirm.suspects(judgement.verdicts)
    if not names:
        return
    with basetree.opened(source, loaded, args.select) as base:
        again = measure(loaded, [s for s in specs if s.name in names],
                        args.results.with_name("confirmation.json"), base=base)
    paired = judge.judge(again.results, None, judge.policies(loaded), False)
    judgement.verdicts = confirm.confirm(judgement.verdicts, paired.verdicts, base.label)
    judgement.notes.append(f"re-measured beside the base ({base.label}) to confirm: "
                           f"{', '.join(names)}")


def _plan(args: Args) -> tuple[Manifest, list[ModelSpec], Shard | None]:
    """The manifest's models this run exports (and its shard of them), or why none."""
    from modelexport.commands import console
    from modelexport.gate import manifest, sandbox, shards
    from modelexport.github import actions
    from modelexport.publish import report

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


def _refuse(args: Args) -> None:
    """What the command line alone refuses, before any process starts."""
    from modelexport.errors import MissingExtraError

    _refuse_meaningless(args)
    _refuse_unwritable(args)
    if importlib.util.find_spec("torch") is None:  # say so once, not once per model
        raise MissingExtraError("torch")


def _refuse_meaningless(args: Args) -> None:
    if args.compare_with == "baseline" and (args.against or args.against_ref):
        raise UsageError("--compare-with baseline measures no base: drop --against or "
                         "--against-ref, or compare with auto or base")
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
                             ("$GITHUB_STEP_SUMMARY", Path(summary) if summary else None),
                             ("--keep", args.keep / "MODEL" if args.keep else None))


def _hub_token(secrets: dict[str, str]) -> str | None:
    return secrets.get("HF_TOKEN") or secrets.get("HUGGING_FACE_HUB_TOKEN")
