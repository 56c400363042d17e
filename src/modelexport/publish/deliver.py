"""Where a judged run's reports go: report files (``formats``), and in GitHub Actions the
step summary, the step outputs, annotations and the sticky PR comment. No torch.

``deliver`` returns what a reader should be told (annotations); printing them is the
caller's business, so a Python caller gets the same reports as the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modelexport import jsonfile
from modelexport.errors import UsageError
from modelexport.gate.judge import Judgement
from modelexport.gate.manifest import Manifest
from modelexport.gate.results import Shard
from modelexport.github import actions, comment
from modelexport.github.actions import Annotation
from modelexport.publish import formats, report


@dataclass(frozen=True)
class Targets:
    """What to publish, and where."""

    results_path: Path  # named in the report and the step outputs
    baseline_path: Path  # named in the update hint
    reports: dict[str, Path] = field(default_factory=dict)  # format name -> its file
    comment: bool = False  # create or update the sticky PR comment
    comment_key: str | None = None  # which comment (default: the manifest and shard)


def deliver(judgement: Judgement, targets: Targets, manifest: Manifest | None,
            env: Mapping[str, str]) -> list[Annotation]:
    hint = report.update_hint(str(targets.results_path),
                              str(targets.baseline_path))
    markdown = formats.MARKDOWN.render(judgement, hint)
    notes: list[Annotation] = []
    # A report that cannot be written (a full disk) is a warning: the other reports, the
    # outputs and the comment still go out, and the verdict decides the exit code.
    for name, path in targets.reports.items():
        shown = formats.FORMATS[name]
        notes += _write(path, markdown if shown is formats.MARKDOWN
                        else shown.render(judgement, hint))
    if actions.in_actions(env):
        lines = {spec.name: spec.line for spec in manifest.models} if manifest else {}
        where = str(manifest.path) if manifest else None
        notes += report.verdict_annotations(judgement.verdicts, where, lines)
        written = {shown.output: str(targets.reports.get(name, ""))
                   for name, shown in formats.FORMATS.items()}
        outputs = report.outputs(judgement.verdicts, str(targets.results_path), written,
                                 judgement.failed)
        notes += _to_runner(env, "GITHUB_STEP_SUMMARY",
                            lambda path: actions.append_summary(path, markdown))
        notes += _to_runner(env, "GITHUB_OUTPUT",
                            lambda path: actions.write_outputs(path, outputs))
    if targets.comment:
        key = targets.comment_key or comment_key(judgement.results.manifest_path,
                                                  judgement.results.shard)
        notes.append(comment.post(env, markdown, key, judgement.results.pull_request
                                 or actions.pull_request(env)))
    return notes


def _write(path: Path, text: str) -> list[Annotation]:
    try:
        jsonfile.replace_text(path, text)
    except OSError as exc:
        return [_not_written(exc, path)]
    except UsageError as exc:  # a path that became a socket, a pipe without a reader
        return [Annotation("warning", f"not written: {exc}")]
    return []


def _to_runner(env: Mapping[str, str], variable: str, write: Callable[[Path], None]
               ) -> list[Annotation]:
    """One of the runner's files written, or a warning naming it: the other reports still
    go out, and the verdict decides."""
    if not env.get(variable):
        return []
    try:
        write(Path(env[variable]))
    except OSError as exc:
        return [_not_written(exc, f"${variable} {env[variable]}")]
    return []


def _not_written(exc: OSError, path: Path | str) -> Annotation:
    return Annotation("warning", f"{path}: not written: {exc.strerror or exc}")


def comment_key(manifest: str, shard: Shard | None) -> str:
    """One sticky comment per manifest and shard."""
    return f"{manifest} shard {shard.index}/{shard.count}" if shard else manifest
