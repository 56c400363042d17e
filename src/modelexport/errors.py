"""Errors raised by the library; the CLI turns each into one line and an exit code."""

import json
import re
from typing import Any

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the dynamo exporter colours its messages


class ModelExportError(Exception):
    """A failure the user can act on. ``exit_code`` is what the CLI returns."""

    exit_code = 1


class UsageError(ModelExportError):
    """Bad arguments or configuration: nothing was attempted."""

    exit_code = 2


class MissingExtraError(UsageError):
    """A command needs the export stack, which is not installed."""

    def __init__(self, module: str) -> None:
        super().__init__(
            f"this command needs the export stack ({module} is not installed): "
            f"pip install torch==2.13.0 && pip install '{export_requirement(_direct_url())}'"
        )


def export_requirement(direct_url: dict[str, Any] | None) -> str:
    """The requirement that adds the export extra to modelexport as it was installed.

    ``direct_url`` is pip's record of where a package came from (PEP 610; None when it
    came from an index). Installed from git or a folder, a bare ``modelexport[export]``
    would look for it on PyPI instead.
    """
    if not direct_url:
        return "modelexport[export]"
    url = direct_url["url"]
    vcs = direct_url.get("vcs_info")
    if vcs:
        revision = vcs.get("requested_revision")
        url = f"{vcs['vcs']}+{url}" + (f"@{revision}" if revision else "")
    return f"modelexport[export] @ {url}"


def _direct_url() -> dict[str, Any] | None:
    from importlib import metadata  # imported on this error path only, not at every start

    try:
        text = metadata.distribution("modelexport").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    return json.loads(text) if text else None


class ExportFailed(ModelExportError):
    """The model could not be loaded, exported, tagged or validated."""


class MetadataInvalid(ModelExportError):
    """A sidecar or ONNX file does not match the schema or each other."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, without terminal colours ('' if none)."""
    text = _ANSI.sub("", str(exc)).strip()
    return text.splitlines()[0] if text else ""


def describe(exc: BaseException, limit: int = 500) -> str:
    """``Type: first line``, plus the root cause when a library wrapped one: how a
    failure from code that is not ours (an exporter, a checker) reads in one line."""

    def line(e: BaseException) -> str:
        return f"{type(e).__name__}: {first_line(e)}"

    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    message = line(exc) if root is exc else f"{line(exc)} (cause: {line(root)})"
    return message[:limit]
