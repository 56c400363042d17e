"""The GitHub Actions runner: its files (step summary, outputs, the event payload) and its
workflow commands (annotations). Standard library only; nothing here talks to the network.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from modelexport import escape

SUMMARY_LIMIT = 1024 * 1024  # bytes; GitHub refuses a larger step summary
ANNOTATIONS_PER_KIND = 10  # GitHub shows at most 10 errors and 10 warnings per step


@dataclass(frozen=True)
class PullRequest:
    """The pull request a run was for: where the ``report`` mode posts its comment."""

    repository: str
    number: int


class Annotation(NamedTuple):
    kind: str  # error | warning | notice
    message: str
    file: str | None = None
    line: int | None = None
    title: str | None = None


def in_actions(env: Mapping[str, str]) -> bool:
    return env.get("GITHUB_ACTIONS") == "true"


def escape_data(text: str) -> str:
    """A workflow command's message: line breaks encoded as the runner decodes them, every
    other control character (a terminal escape) shown as text."""
    shown = escape.visible(text, keep="\r\n")
    return shown.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_commands(annotations: list[Annotation]) -> list[str]:
    """``::error file=..,line=..::message`` lines, at most 10 per kind, then one line
    saying how many more there were."""
    lines = []
    shown: Counter[str] = Counter()
    for note in annotations:
        shown[note.kind] += 1
        if shown[note.kind] > ANNOTATIONS_PER_KIND:
            continue
        fields = ",".join(f"{key}={escape_property(str(value))}"
                          for key, value in (("file", note.file), ("line", note.line),
                                             ("title", note.title)) if value is not None)
        head = f"::{note.kind} {fields}" if fields else f"::{note.kind}"
        lines.append(f"{head}::{escape_data(note.message)}")
    for kind, count in shown.items():
        if count > ANNOTATIONS_PER_KIND:
            lines.append(f"::{kind}::{count - ANNOTATIONS_PER_KIND} more {kind}s; "
                         "see the log and the step summary")
    return lines


def write_outputs(path: Path, outputs: Mapping[str, str]) -> None:
    """Append step outputs to ``$GITHUB_OUTPUT``; the heredoc form with a random
    delimiter keeps a value with newlines (or a forged delimiter) from escaping."""
    with path.open("a", encoding="utf-8") as out:
        for name, value in outputs.items():
            delimiter = f"modelexport_{secrets.token_hex(8)}"
            out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def append_summary(path: Path, markdown: str) -> None:
    """Append to ``$GITHUB_STEP_SUMMARY``, cut to what GitHub accepts (1 MiB per step)."""
    used = path.stat().st_size if path.exists() else 0
    with path.open("a", encoding="utf-8") as out:
        out.write(cap(markdown, SUMMARY_LIMIT - used, encoded=True))


def cap(text: str, limit: int, encoded: bool = False) -> str:
    """``text`` cut to ``limit`` characters (bytes if ``encoded``), with a note saying so."""
    size = len(text.encode()) if encoded else len(text)
    if size <= limit:
        return text
    note = "\n\n_(truncated: the full report is in the job's log and artifacts)_\n"
    keep = max(limit - len(note.encode()), 0)
    head = text.encode()[:keep].decode(errors="ignore") if encoded else text[:keep]
    return head + note


def event(env: Mapping[str, str]) -> dict[str, Any]:
    """The payload of the event that started the workflow ({} outside Actions, or where
    it is not a JSON object)."""
    path = env.get("GITHUB_EVENT_PATH")
    if not path or not Path(path).is_file():
        return {}
    try:
        payload = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return payload if isinstance(payload, dict) else {}


def pull_request_base(env: Mapping[str, str]) -> str | None:
    """The commit the pull request of this run targets (``pull_request.base.sha``), if
    this run is for one."""
    pull = event(env).get("pull_request")
    base = pull.get("base") if isinstance(pull, dict) else None
    sha = base.get("sha") if isinstance(base, dict) else None
    return sha if isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{40}", sha) else None


def pull_request(env: Mapping[str, str]) -> PullRequest | None:
    """The pull request this run is for, if any."""
    pull = event(env).get("pull_request")
    number = pull.get("number") if isinstance(pull, dict) else None
    repository = env.get("GITHUB_REPOSITORY")
    if not isinstance(number, int) or not repository:
        return None
    return PullRequest(repository, number)
