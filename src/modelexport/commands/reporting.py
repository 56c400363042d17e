"""The report options ``check`` and ``compare`` share: one ``--report-NAME`` per format of
the registry (``publish/formats.py``), a folder for all of them, the PR comment."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelexport.publish.formats import FORMATS

if TYPE_CHECKING:
    from modelexport.gate.judge import Judgement
    from modelexport.publish.deliver import Targets


@dataclass(frozen=True)
class ReportArgs:
    reports: dict[str, Path] | None  # format name -> file; None: none asked for
    report_dir: Path | None
    allow_env_drift: bool
    allow_no_baseline: bool
    comment: bool
    comment_key: str | None

    def files(self) -> dict[str, Path]:
        """Every report file asked for: in the folder, then the ones named one by one."""
        folder = ({name: self.report_dir / shown.file for name, shown in FORMATS.items()}
                  if self.report_dir else {})
        return {**folder, **(self.reports or {})}

    def outputs(self) -> list[tuple[str, Path]]:
        """(option, file) for every report file, to check before anything runs."""
        return [(f"--report-{name}", path) for name, path in self.files().items()]

    def exit_code(self, judgement: Judgement) -> int:
        """1 for a failing run, saying so when it failed for comparing nothing."""
        if judgement.uncompared and judgement.results.base:
            print("modelexport: error: nothing was compared with the base: no model "
                  "measured on both sides", file=sys.stderr)
        elif judgement.uncompared:
            print("modelexport: error: nothing was compared with a baseline: make one with "
                  "--update-baseline (the action's mode: update-baseline), or pass "
                  "--allow-no-baseline", file=sys.stderr)
        return 1 if judgement.failed else 0

    def targets(self, results: Path, baseline: Path) -> Targets:
        from modelexport.publish.deliver import Targets

        return Targets(results, baseline, self.files(), self.comment, self.comment_key)


class _Report(argparse.Action):
    """``--report-NAME FILE`` into one dict of the format's name -> FILE."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option: str | None = None) -> None:
        name = self.option_strings[0].removeprefix("--report-")
        chosen = getattr(namespace, self.dest) or {}
        setattr(namespace, self.dest, {**chosen, name: Path(str(values))})


def add_options(parser: argparse.ArgumentParser) -> None:
    for name, shown in FORMATS.items():
        parser.add_argument(f"--report-{name}", dest="reports", action=_Report,
                            metavar="FILE", help=f"write {shown.help} here")
    parser.add_argument("--report-dir", type=Path, metavar="DIR",
                        help="write every report there: "
                        + ", ".join(shown.file for shown in FORMATS.values()))
    parser.add_argument("--allow-env-drift", action="store_true",
                        help="gate timings even if the baseline was measured elsewhere")
    parser.add_argument("--allow-no-baseline", action="store_true",
                        help="pass although nothing was compared (no baseline yet: a first "
                        "run); without it such a run fails")
    parser.add_argument("--comment", action="store_true",
                        help="create or update the sticky PR comment (GitHub Actions; needs "
                        "GITHUB_TOKEN)")
    parser.add_argument("--comment-key", metavar="KEY",
                        help="which sticky comment (default: the manifest and shard)")
