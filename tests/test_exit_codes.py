"""The one exit-code rule, held by every command: 0 the answer is yes; 1 the answer is no (a
regression, a failed export or check, an invalid file that was asked to be validated); 2 the
question cannot be answered as asked (bad arguments, a file, folder or module named that is
not there, a manifest the command cannot run); 3 a bug of modelexport."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.harness import one_error_line, outside_actions, run_cli

from fake_hub import SHA, FakeHub

GOOD = "version: 1\nmodels:\n  - name: a\n    source: {id: org/a}\n"
TYPO = "version: 1\nmodels:\n  - name: a\n    sourc: {id: org/a}\n"
ABSENT = "version: 1\nmodels:\n  - name: a\n    source: {factory: 'gone.module:build'}\n"

ROWS = [
    # command line                                            exit  why
    (["validate", "good.yaml"], 0),                           # valid
    (["validate", "typo.yaml"], 1),                           # invalid: the answer is no
    (["validate", "absent.yaml"], 1),                         # names a module not there: no
    (["validate", "good.yaml", "missing.yaml"], 2),           # one file is not there
    (["check", "typo.yaml"], 2),                              # a manifest check cannot run
    (["check", "absent.yaml"], 2),
    (["check", "missing.yaml"], 2),
    (["diff", "missing.onnx", "missing.onnx"], 2),
    (["profile", "missing.onnx"], 2),
    (["verify", "missing.onnx"], 2),
    (["export", "./no-such-folder", "-o", "m.onnx"], 2),
    (["export", "--factory", "gone.module:build", "-o", "m.onnx"], 2),
    (["export", "--model-type", "bert", "--input", "input_ids=1xx2", "-o", "m.onnx"], 2),
    (["export", "--model-type", "gpt2", "--use-cache", "-o", "m.onnx"], 2),  # now --task
    (["no-such-command"], 2),
]


@pytest.mark.parametrize(("args", "code"), ROWS, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else str(v))
def test_every_command_follows_one_exit_code_rule(tmp_path: Path, args: list[str],
                                                  code: int) -> None:
    for name, text in (("good.yaml", GOOD), ("typo.yaml", TYPO), ("absent.yaml", ABSENT)):
        (tmp_path / name).write_text(text)
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.export
@pytest.mark.parametrize(("model", "revision", "said"), [
    ("org/other", SHA, "org/other@" + SHA + ": no such model on the hub"),
    ("org/tiny", "f" * 40, "no such revision"),
])
def test_a_model_or_revision_the_hub_does_not_have_is_a_usage_error(
        tmp_path: Path, model: str, revision: str, said: str) -> None:
    hub = FakeHub({"config.json": b"{}"}, repo="org/tiny")
    with hub.serve() as url:
        env = {k: v for k, v in outside_actions(os.environ).items() if k != "HF_HUB_OFFLINE"}
        proc = run_cli("export", model, "--revision", revision, "-o", str(tmp_path / "m.onnx"),
                       env={**env, "HF_ENDPOINT": url, "HF_HOME": str(tmp_path / "hf")})
    assert proc.returncode == 2, proc.stderr
    assert said in one_error_line(proc)
