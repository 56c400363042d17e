"""How commands talk to the terminal or the CI log: notes and progress lines."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from modelexport.escape import printable
from modelexport.gate.runner import Progress
from modelexport.github import actions
from modelexport.github.actions import Annotation


def announce(notes: Sequence[Annotation]) -> None:
    """Annotations as workflow commands in Actions, else plain lines (warnings to stderr)."""
    if actions.in_actions(os.environ):
        for line in actions.workflow_commands(list(notes)):
            print(line, flush=True)
        return
    for note in notes:
        stream = sys.stdout if note.kind == "notice" else sys.stderr
        where = f"{note.file}:{note.line}: " if note.file else ""
        print(f"modelexport: {note.kind}: {printable(where + note.message)}", file=stream)


class ProgressPrinter:
    """On a terminal, one line per model rewritten in place; in a CI log, a plain line
    each time a model reaches a new stage."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.last: tuple[int, str] | None = None

    def __call__(self, progress: Progress) -> None:
        line = printable(progress.line())  # the stage and error come from the worker
        if self.tty:
            print("\r\x1b[K" + line, end="\n" if progress.done else "", flush=True)
        elif progress.done or (progress.index, progress.stage) != self.last:
            print(line, flush=True)
        self.last = (progress.index, progress.stage)
