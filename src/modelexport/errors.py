"""Errors raised by the library; the CLI turns each into one line and an exit code."""

import re

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
            "pip install torch==2.13.0 && pip install 'modelexport[export]'"
        )


class ExportFailed(ModelExportError):
    """The model could not be loaded, exported, tagged or validated."""


class MetadataInvalid(ModelExportError):
    """A sidecar or ONNX file does not match the schema or each other."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, without terminal colours ('' if none)."""
    text = _ANSI.sub("", str(exc)).strip()
    return text.splitlines()[0] if text else ""
