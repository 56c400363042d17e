"""Files the tool did not write (a manifest, a baseline, a results file from an artifact, a
sidecar, what a worker wrote), read within bounds: a regular file only (a FIFO would block
the read, a device never end it), of a capped size, and where asked, not through a link."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from modelexport.errors import UsageError


@contextlib.contextmanager
def opened(path: Path, follow_links: bool = True) -> Iterator[BinaryIO]:
    """``path`` open for reading; UsageError where it cannot be read or is no regular
    file (or, with ``follow_links`` off, is a link)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_links else os.O_NOFOLLOW)
    try:
        handle = os.open(path, flags)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    # Checked before the handle becomes a file object: that refuses a folder with an
    # OSError of its own, which names the handle's number instead of the path.
    if not stat.S_ISREG(os.fstat(handle).st_mode):
        os.close(handle)
        raise UsageError(f"{path}: not a regular file")
    with os.fdopen(handle, "rb") as file:
        yield file


def read_bytes(path: Path, limit: int, follow_links: bool = True) -> bytes:
    """The bytes of ``path``, at most ``limit`` of them (UsageError beyond)."""
    with opened(path, follow_links) as file:
        size = os.fstat(file.fileno()).st_size
        if size > limit:
            raise UsageError(f"{path}: {size:,} bytes; at most {limit:,}")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise UsageError(f"{path}: over {limit:,} bytes")
    return data


def starts_with(path: Path, prefix: bytes) -> bool:
    """Whether ``path`` starts with ``prefix``, blanks before it aside."""
    with opened(path) as file:
        return file.read(64 + len(prefix)).lstrip().startswith(prefix)


def tail(path: Path, size: int) -> bytes:
    """The last ``size`` bytes of ``path`` (all of it where it is shorter): of a log that
    may have grown to gigabytes, only its end is read."""
    with opened(path) as file:
        length = os.fstat(file.fileno()).st_size
        file.seek(max(length - size, 0))
        return file.read(size)


def copy_files(folder: Path, name: str, to: Path) -> list[str]:
    """Copy the regular files directly inside ``folder/name`` into ``to`` (made if need
    be), following no link: ``name`` and each file in it are opened without following one,
    so what a worker wrote cannot point the copy at a file only the copier may read. The
    names copied; none where ``folder/name`` is no folder."""
    flags = os.O_RDONLY | os.O_NOFOLLOW
    try:
        parent = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return []
    try:
        inside = os.open(name, flags | os.O_DIRECTORY, dir_fd=parent)
    except OSError:  # gone, or a link, or no folder
        return []
    finally:
        os.close(parent)
    copied = []
    try:
        for entry in sorted(os.listdir(inside)):
            try:
                source = os.open(entry, flags | os.O_NONBLOCK, dir_fd=inside)
            except OSError:  # a link, or gone
                continue
            with os.fdopen(source, "rb") as file:
                if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                    continue
                to.mkdir(parents=True, exist_ok=True)
                with open(to / entry, "wb") as out:
                    shutil.copyfileobj(file, out, 1 << 20)
            copied.append(entry)
    finally:
        os.close(inside)
    return copied
