"""``modelexport validate``: sidecars, ONNX files against them, and manifests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import config_args, outside_actions, run_cli

TINY_BERT = config_args("bert")


@pytest.mark.export
def test_validate_catches_a_tampered_tag_and_a_broken_sidecar(tmp_path: Path) -> None:
    import onnx

    output = tmp_path / "m.onnx"
    assert run_cli("export", *TINY_BERT, "-o", str(output)).returncode == 0
    sidecar_file = tmp_path / "m.hierarchy.json"
    sidecar = json.loads(sidecar_file.read_text())

    model = onnx.load(output)
    victim = next(n for n in model.graph.node if n.metadata_props)
    for prop in victim.metadata_props:
        if prop.key == "modelexport.module":
            prop.value = "pooler"
    onnx.save(model, output)
    proc = run_cli("validate", str(output))
    assert proc.returncode == 1
    assert victim.name in proc.stderr

    sidecar["statistics"]["surprise"] = 1
    del sidecar["nodes"][0]["how"]
    sidecar_file.write_text(json.dumps(sidecar))
    proc = run_cli("validate", str(sidecar_file))
    assert proc.returncode == 1
    assert "nodes[0]: 'how' is a required property" in proc.stderr
    assert "statistics: Additional properties are not allowed ('surprise'" in proc.stderr


@pytest.mark.parametrize("in_actions", [False, True])
def test_validate_manifests_without_the_export_stack(tmp_path: Path, in_actions: bool) -> None:
    good = tmp_path / "models.yaml"
    good.write_text("models:\n  - name: a\n    source: {id: org/a}\n")
    bad = tmp_path / "broken.yml"
    bad.write_text("models:\n  - name: a\n    source: {path: x}\n    repeets: 3\n")
    code = (
        "import sys\nfrom modelexport import cli\nrc = cli.main(sys.argv[1:])\n"
        "print('heavy:', [m for m in ('torch', 'onnx', 'transformers') if m in sys.modules])\n"
        "sys.exit(rc)"
    )
    env = outside_actions(os.environ) | ({"GITHUB_ACTIONS": "true"} if in_actions else {})
    proc = subprocess.run([sys.executable, "-c", code, "validate", str(good), str(bad)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    assert f"{good}: valid manifest, 1 models" in proc.stdout
    if in_actions:  # the warning on its line of the manifest
        assert (f"::warning file={good},line=3::models[0].source: no revision"
                in proc.stdout)
    else:
        assert f"{good}:3: models[0].source: no revision" in proc.stderr
    assert f"{bad}:4: models[0].repeets: unknown key (did you mean 'repeats'?)" in proc.stderr
    assert "heavy: []" in proc.stdout


@pytest.mark.export
def test_a_truncated_onnx_file_is_one_line_and_the_next_file_is_still_checked(
        exports, tmp_path: Path) -> None:
    result = exports.get("bert", "torchscript")
    data = result.onnx_path.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    shutil.copy(result.sidecar_path, tmp_path / "cut.hierarchy.json")
    proc = run_cli("validate", "cut.onnx", str(result.onnx_path), cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "cut.onnx: not an ONNX model" in proc.stderr
    assert f"tags agree with {result.onnx_path}" in proc.stdout
