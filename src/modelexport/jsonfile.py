"""JSON files that a reader never sees half-written."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelexport.errors import UsageError


def write_atomic(path: Path, document: Any) -> None:
    """Write ``document`` as JSON, atomically (``replace_text``).

    NaN and infinity are refused: they are not JSON, and a NaN disables every comparison.
    """
    replace_text(path, json.dumps(document, indent=1, allow_nan=False) + "\n")


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path``: a reader sees the old file or the new one, never half,
    also when the disk fills up on the way.

    The temporary file has a name of its own (not one fixed per target): two writers of one
    file each rename a whole file of theirs, and a failed write leaves no temporary behind.
    """
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


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold the lock of ``path`` (a hidden file beside it) while the block runs: two gate
    runs on one results file would each rewrite it and lose the other's models. UsageError
    when another process holds it."""
    import fcntl  # POSIX; the gate's process handling is too

    lock = path.with_name(f".{path.name}.lock")
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{path}: another modelexport run is writing it") from None
        yield


def ensure_writable(*outputs: tuple[str, Path | None]) -> None:
    """UsageError, naming the option, unless each given (option, path) can be written (its
    folder is made); a path of None was not asked for."""
    for option, path in outputs:
        if path is None:
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{option} {path}: cannot make its folder: {exc.strerror}") from exc
        if path.is_dir() or not os.access(path.parent, os.W_OK | os.X_OK) \
                or (path.exists() and not os.access(path, os.W_OK)):
            raise UsageError(f"{option} {path}: not writable")


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
