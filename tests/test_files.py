"""Files from outside read within bounds: the end of a log, however long it grew."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelexport import files
from modelexport.errors import UsageError


def test_tail_reads_the_end_of_a_long_file_and_all_of_a_short_one(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_bytes(b"x" * 10_000_000 + b"\nthe last words\n")
    end = files.tail(log, 100)
    assert len(end) == 100 and end.endswith(b"x\nthe last words\n")
    short = tmp_path / "short.log"
    short.write_bytes(b"one line\n")
    assert files.tail(short, 100) == b"one line\n"


def test_tail_refuses_what_is_no_regular_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a regular file"):
        files.tail(tmp_path, 100)
    with pytest.raises(UsageError, match="no such file"):
        files.tail(tmp_path / "gone.log", 100)
