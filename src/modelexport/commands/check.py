"""``modelexport check``: the gate. Export a manifest's models (a process each), judge
them against the baseline, publish the reports, optionally update the baseline."""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import signal
import sys
from pathlib import Path

from modelexport import jsonfile
from modelexport.commands import console
from modelexport.commands.compare import targets
from modelexport.errors import MissingExtraError, ModelExportError, UsageError
from modelexport.gate import judge, manifest, results, runner, shards
from modelexport.publish import deliver, github, report

REPEATS_LIMIT = 100  # as the manifest's schema allows


def run(args: argparse.Namespace) -> int:
    _refuse_meaningless(args)
    _refuse_unwritable(args)
    if importlib.util.find_spec("torch") is None:  # say so once, not once per model
        raise MissingExtraError("torch")
    loaded = manifest.load(args.manifest).overridden(repeats=args.repeats,
                                                     time_threshold=args.threshold)
    console.announce(report.located("warning", loaded.warnings))
    specs = loaded.select(args.select)
    if not specs:
        raise UsageError(f"{args.manifest}: no model has tag(s) {', '.join(args.select)}")
    shard = None
    if args.shard:
        specs, shard = shards.plan(specs, args.shard, args.baseline)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        done = runner.run_manifest(loaded, specs, args.results, console.ProgressPrinter(),
                                   shard, github.pull_request(os.environ))
    except KeyboardInterrupt:
        print(f"modelexport: interrupted; finished models are in {args.results}",
              file=sys.stderr)
        return 130
    current = done.results
    judgement = judge.judge(current, args.baseline, judge.policies(loaded), args.allow_env_drift,
                            scope={spec.name for spec in specs})
    print(f"results: {args.results}")
    print(report.terminal(judgement.verdicts, judgement.notes), end="")
    console.announce(deliver.publish(judgement, targets(args, args.results), loaded,
                                     os.environ))
    if done.unsaved:
        # The report above is all that is left of this run: it must not pass, nor become
        # a baseline.
        raise ModelExportError(f"--results {args.results}: not saved ({done.unsaved}); "
                               "the report above is this run's only record")
    if args.update_baseline:
        results.write_baseline(current, args.baseline)
        print(f"baseline written: {args.baseline}")
    return 1 if judgement.failed else 0


def _refuse_meaningless(args: argparse.Namespace) -> None:
    if args.update_baseline and args.baseline is None:
        raise UsageError("--update-baseline needs --baseline FILE")
    if args.repeats is not None and args.repeats < 1:
        raise UsageError(f"--repeats {args.repeats}: needs at least 1")
    if args.threshold is not None and not 0 <= args.threshold < math.inf:
        raise UsageError(f"--threshold {args.threshold:g}: a slowdown, e.g. 0.10 for +10 %")
    if args.baseline is not None and args.results.absolute() == args.baseline.absolute():
        raise UsageError(f"--results {args.results} is the baseline too: this run would "
                         "overwrite the baseline it is compared with")
    if args.repeats is not None and args.repeats > REPEATS_LIMIT:
        raise UsageError(f"--repeats {args.repeats}: at most {REPEATS_LIMIT}")


def _refuse_unwritable(args: argparse.Namespace) -> None:
    """Where this run writes must be writable before the first model is exported: a run
    that measured for an hour and then cannot save is an hour lost."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY") if github.in_actions(os.environ) else None
    jsonfile.ensure_writable(("--results", args.results), ("--report-md", args.report_md),
                             ("--report-json", args.report_json),
                             ("--baseline", args.baseline if args.update_baseline else None),
                             ("$GITHUB_STEP_SUMMARY", Path(summary) if summary else None))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
