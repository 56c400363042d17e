"""JSON files that a reader never sees half-written."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: Path, document: Any) -> None:
    """Write ``document`` as JSON: a reader sees the old file or the new one, never half.

    The temporary file has a name of its own (not one fixed per target): two writers of one
    file each rename a whole file of theirs, and a failed write leaves no temporary behind.
    NaN and infinity are refused: they are not JSON, and a NaN disables every comparison.
    """
    text = json.dumps(document, indent=1, allow_nan=False) + "\n"
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(handle, 0o666 & ~_umask())  # as open() would make it, not mkstemp's 0600
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def loads(text: str) -> Any:
    """JSON as we write it: NaN, Infinity and numbers beyond a float's range are refused
    (ValueError), so that no comparison is ever made against a NaN."""
    return json.loads(text, parse_constant=_refuse, parse_float=_finite)


def _refuse(token: str) -> float:
    raise ValueError(f"{token} is not a number")


def _finite(token: str) -> float:
    value = float(token)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{token} is beyond a float's range")
    return value
