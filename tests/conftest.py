"""Fixtures: the test architectures exported once per session, a fake GitHub API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_github import FakeGitHub
from harness import source_for

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
