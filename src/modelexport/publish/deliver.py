"""Where a judged run's reports go: markdown and JSON files, and in GitHub Actions the step
summary, the step outputs, annotations and the sticky PR comment. No torch.

``publish`` returns what a reader should be told (annotations); printing them is the
caller's business, so a Python caller gets the same reports as the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelexport import jsonfile
from modelexport.gate.judge import Judgement
from modelexport.gate.manifest import Manifest
from modelexport.gate.results import Results
from modelexport.publish import github, report
from modelexport.publish.github import Annotation

DEFAULT_BASELINE = Path("modelexport-baseline.json")


@dataclass(frozen=True)
class Targets:
    """What to publish, and where."""

    results_path: Path  # named in the report and the step outputs
    baseline_path: Path | None = None  # named in the update hint (default: DEFAULT_BASELINE)
    markdown: Path | None = None
    json: Path | None = None
    comment: bool = False  # create or update the sticky PR comment
    comment_key: str | None = None  # which comment (default: the manifest and shard)


def publish(judgement: Judgement, targets: Targets, manifest: Manifest | None,
            env: Mapping[str, str]) -> list[Annotation]:
    hint = report.update_hint(str(targets.results_path),
                              str(targets.baseline_path or DEFAULT_BASELINE))
    markdown = report.markdown(judgement.verdicts, judgement.results, judgement.baseline,
                               judgement.notes, hint, judgement.drift)
    notes: list[Annotation] = []
    # A report that cannot be written (a full disk) is a warning: the other reports, the
    # outputs and the comment still go out, and the verdict decides the exit code.
    if targets.markdown:
        notes += _write(targets.markdown, markdown)
    if targets.json:
        notes += _write(targets.json, report.as_json(judgement.verdicts, judgement.notes))
    if github.in_actions(env):
        lines = {spec.name: spec.line for spec in manifest.models} if manifest else {}
        where = str(manifest.path) if manifest else None
        notes += report.verdict_annotations(judgement.verdicts, where, lines)
        outputs = report.outputs(judgement.verdicts, str(targets.results_path),
                                 str(targets.markdown or ""))
        try:
            github.publish(env, markdown, outputs)
        except OSError as exc:
            notes.append(_not_written(exc))
    if targets.comment:
        key = targets.comment_key or comment_key(judgement.results)
        notes.append(github.comment(env, markdown, key, judgement.results.pull_request
                                    or github.pull_request(env)))
    return notes


def _write(path: Path, text: str) -> list[Annotation]:
    try:
        jsonfile.replace_text(path, text)
    except OSError as exc:
        return [_not_written(exc, path)]
    return []


def _not_written(exc: OSError, path: Path | str | None = None) -> Annotation:
    where = path or exc.filename
    return Annotation("warning", f"{where}: not written: {exc.strerror or exc}")


def comment_key(results: Results) -> str:
    """One sticky comment per manifest and shard."""
    shard = results.shard
    where = results.manifest_path
    return f"{where} shard {shard.index}/{shard.count}" if shard else where
