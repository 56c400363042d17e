"""``modelexport check --against / --against-ref``: a pull request's base measured beside its
head, in a real git repository whose head commit widens a layer of a factory model."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from modelexport.gate import results
from modelexport.gate.records import Failed, Measured

from harness import one_error_line, run_cli

pytestmark = pytest.mark.export

NETS = '''
import torch


class Block(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        self.up = torch.nn.Linear(16, width)
        self.down = torch.nn.Linear(width, 16)

    def forward(self, x):
        return self.down(torch.relu(self.up(x)))


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.wide = Block(WIDTH)
        self.narrow = Block(32)

    def forward(self, x):
        return self.narrow(self.wide(x))


def build():
    return Net(), {"x": torch.ones(4, 16)}
'''
MANIFEST = textwrap.dedent("""\
    defaults: {repeats: 6}
    models:
      - name: mlp
        source: {factory: "nets:build"}
        inference: {runs: 20, warmup: 2}
      - name: PLACE
        source: {factory: "nets:build"}
    """)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c",
                           "user.email=t@t", *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(workspace: Path) -> Path:
    """Base: ``mlp`` and ``dropped``. Head: ``mlp`` with its first block 8x wider, and
    ``added`` in place of ``dropped``. Its checkout readable by everyone, as a CI job's is."""
    tmp_path = workspace / "repo"
    (tmp_path / "gate").mkdir(parents=True)
    git(tmp_path, "init", "-q")
    (tmp_path / "gate" / "nets.py").write_text(NETS.replace("WIDTH", "32"))
    (tmp_path / "gate" / "models.yaml").write_text(MANIFEST.replace("PLACE", "dropped"))
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "base")
    (tmp_path / "gate" / "nets.py").write_text(NETS.replace("WIDTH", "256"))
    (tmp_path / "gate" / "models.yaml").write_text(MANIFEST.replace("PLACE", "added"))
    git(tmp_path, "commit", "-qam", "head")
    return tmp_path


def test_the_base_from_a_ref_is_measured_beside_the_head_and_compared_in_pairs(repo: Path
                                                                                ) -> None:
    commit = git(repo, "rev-parse", "--short=7", "HEAD~1")
    proc = run_cli("check", "gate/models.yaml", "--against-ref", "HEAD~1",
                   "--report-json", "report.json", cwd=repo)
    assert proc.returncode == 1, proc.stderr  # the wider layer: a bigger graph
    assert f"compared with the base ({commit})" in proc.stdout
    assert "mlp: base: " in proc.stdout and "mlp: head: " in proc.stdout  # progress
    document = results.load(repo / "modelexport-out" / "results.json")
    assert document.base is not None and document.base.label == commit
    head, base = document.models["mlp"], document.base.models["mlp"]
    assert isinstance(head, Measured) and isinstance(base, Measured)
    assert len(head.total) == len(base.total) == 6
    # Both profiled in one process, with the head's settings, in ten alternating blocks.
    assert head.inference is not None and base.inference is not None
    assert head.inference.settings == base.inference.settings
    assert len(head.inference.latency_ms) == len(base.inference.latency_ms) == 20
    assert base.structure is not None and head.structure is not None
    assert head.structure.weight_bytes > base.structure.weight_bytes  # its own code
    report = json.loads((repo / "report.json").read_text())
    assert report["compared_with"] == {"kind": "base", "label": commit}
    verdicts = {m["name"]: m for m in report["models"]}
    assert verdicts["mlp"]["verdict"] == "regressed"
    assert any(r.startswith("ONNX size") for r in verdicts["mlp"]["reasons"])
    assert verdicts["added"]["verdict"] == "new"
    assert verdicts["dropped"]["verdict"] == "missing"
    assert git(repo, "worktree", "list").count("\n") == 0  # its checkout removed


def test_a_base_that_fails_is_the_models_failure_and_the_head_is_still_measured(
        repo: Path) -> None:
    base = repo.parent / "base"
    git(repo, "worktree", "add", "-q", "--detach", str(base), "HEAD~1")
    (base / "gate" / "nets.py").write_text("def build():\n    raise ValueError('broken')\n")
    proc = run_cli("check", "gate/models.yaml", "--against", str(base), "--select", "x",
                   cwd=repo)
    assert one_error_line(proc) == "modelexport: error: gate/models.yaml: no model has " \
        "tag(s) 'x'"
    proc = run_cli("check", "gate/models.yaml", "--against", str(base), cwd=repo)
    assert proc.returncode == 1
    document = results.load(repo / "modelexport-out" / "results.json")
    assert isinstance(document.models["mlp"], Measured)
    assert document.base is not None and isinstance(document.base.models["mlp"], Failed)
    assert "mlp" in proc.stdout and "base: " in proc.stdout and "ValueError: broken" in \
        proc.stdout


@pytest.mark.parametrize(("option", "expected"), [
    (["--against-ref", "no-such-branch"], "--against-ref no-such-branch: no such commit in "),
    (["--against-ref=--output=/tmp/x"], "--against-ref --output=/tmp/x: no such commit in "),
    (["--against", "missing"], "--against missing: not a folder"),
    (["--against", "elsewhere"], "--against elsewhere: has no gate/models.yaml (the head's "
                                 "manifest, in the same place)"),
])
def test_a_base_that_is_no_base_is_one_line_and_exit_2(repo: Path, option: list[str],
                                                       expected: str) -> None:
    (repo / "elsewhere").mkdir()
    proc = run_cli("check", "gate/models.yaml", *option, cwd=repo)
    assert proc.returncode == 2
    assert expected in one_error_line(proc)


def test_an_invalid_base_manifest_is_named_with_its_line(repo: Path) -> None:
    base = repo.parent / "base"
    git(repo, "worktree", "add", "-q", "--detach", str(base), "HEAD~1")
    (base / "gate" / "models.yaml").write_text("models:\n  - name: mlp\n    sauce: {}\n")
    proc = run_cli("check", "gate/models.yaml", "--against", str(base), cwd=repo)
    assert proc.returncode == 2
    assert f"{base / 'gate' / 'models.yaml'}:3" in proc.stderr
