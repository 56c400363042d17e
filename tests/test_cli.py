"""The command line itself: the parser, dispatch and the error edge. No exports."""

from __future__ import annotations

import textwrap
from pathlib import Path

from fake_github import FakeGitHub, actions_env
from harness import run_cli


def test_manifest_errors_become_annotations_on_their_lines(tmp_path: Path,
                                                           fake: FakeGitHub) -> None:
    (tmp_path / "models.yaml").write_text(textwrap.dedent("""\
        models:
          - name: a
            source: {config: {model_type: bert}}
            repeat: 3
        """))
    env = actions_env(tmp_path, fake, {}, "unused-token")
    proc = run_cli("check", "models.yaml", env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert ("::error file=models.yaml,line=4,title=modelexport%3A manifest::models[0].repeat: "
            "unknown key (did you mean 'repeats'?)") in proc.stdout
