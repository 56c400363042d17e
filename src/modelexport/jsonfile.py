"""JSON files that a reader never sees half-written, and that are read within bounds."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelexport import files
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
    A device or a pipe (``/dev/null``, ``/dev/stdout``) is written to, never replaced, and
    a pipe only where a reader is there (no wait for one); a link's target is replaced;
    any other kind of file (a socket) is refused (UsageError).
    """
    if path.exists() and not path.is_file():
        _write_through(path, text)
        return
    path = path.resolve() if path.is_symlink() else path
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


def _write_through(path: Path, text: str) -> None:
    if not _streams(path):
        raise UsageError(f"{path}: not a regular file, a device or a pipe; not written")
    try:
        handle = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # a pipe without a reader: ENXIO
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None
    os.set_blocking(handle, True)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)


def _streams(path: Path) -> bool:
    """Whether ``path`` is a device or a pipe: written to, never replaced."""
    mode = path.stat().st_mode
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


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
    folder is made), as ``replace_text`` writes it; a path of None was not asked for."""
    for option, path in outputs:
        if path is None:
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{option} {path}: cannot make its folder: {exc.strerror}") from exc
        device = path.exists() and _streams(path)
        if path.exists() and not (path.is_file() or path.is_dir() or device):
            raise UsageError(f"{option} {path}: not a regular file, a device or a pipe")
        if device:
            writable = os.access(path, os.W_OK)
        else:
            writable = not path.is_dir() and os.access(path.parent, os.W_OK | os.X_OK) \
                and (not path.exists() or os.access(path, os.W_OK))
        if not writable:
            raise UsageError(f"{option} {path}: not writable")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


READ_LIMIT = 512 << 20  # bytes: results of thousands of models, the sidecar of a huge graph


def read(path: Path, limit: int = READ_LIMIT) -> Any:
    """The JSON document in ``path``, parsed as ``loads`` does. UsageError for what is no
    file to read (``files.read_bytes``); ValueError for what is no JSON of ours."""
    return loads(files.read_bytes(path, limit).decode("utf-8"))


def loads(text: str) -> Any:
    """JSON as we write it: NaN, Infinity and numbers beyond a float's range are refused
    (ValueError), so that no comparison is ever made against a NaN; so is JSON nested too
    deeply to parse (no RecursionError escapes)."""
    try:
        return json.loads(text, parse_constant=_refuse, parse_float=_finite)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _refuse(token: str) -> float:
    raise ValueError(f"{token} is not a number")


def _finite(token: str) -> float:
    value = float(token)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{token} is beyond a float's range")
    return value
