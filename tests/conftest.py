"""Fixtures: the test architectures exported once per session, a fake GitHub API, folders
the gate's unprivileged workers can use."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_github import FakeGitHub
from harness import ROOT, source_for

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Exports:
    """Export each (model, exporter) once per session, on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._done: dict[tuple[str, str], Any] = {}

    def get(self, name: str, exporter: str) -> Any:
        from modelexport.htp.export import export
        from modelexport.htp.options import ExportOptions

        key = (name, exporter)
        if key not in self._done:
            output = self.root / f"{name}-{exporter}.onnx"
            self._done[key] = export(
                source_for(name), output, ExportOptions(exporter=exporter, validate=True)
            )
        return self._done[key]


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Exports:
    return Exports(tmp_path_factory.mktemp("exports"))


def _served() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    server = fake.serve()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    """A fake GitHub REST API served on 127.0.0.1 for the length of one test."""
    yield from _served()


@pytest.fixture
def evil() -> Iterator[FakeGitHub]:
    """Another host on 127.0.0.1, which must never see the token."""
    yield from _served()


@pytest.fixture(scope="session", autouse=True)
def _workers_reach_python(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Run as root, the gate runs model code as ``nobody`` (gate/sandbox.py), which must be
    able to run this Python, as it can a system one: where the interpreter lives under a
    folder only root may enter (a pyenv under /root), the folders above it, the checkout's
    and the tests' temporary folders get the search bit for others (not the read bit)."""
    if os.geteuid() != 0:
        return
    for leaf in (Path(sys.base_prefix), Path(sys.prefix), ROOT, tmp_path_factory.getbasetemp()):
        for folder in (leaf, *leaf.parents):
            mode = folder.stat().st_mode
            if not mode & stat.S_IXOTH:
                folder.chmod(mode | stat.S_IXOTH)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A folder everyone may use, as a repository checkout of a CI job is to the user model
    code runs as: factories there can be imported, and a probe there can write."""
    tmp_path.chmod(0o777)
    return tmp_path
