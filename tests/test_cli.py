"""The CLI as a user runs it: real processes, real files, exit codes and messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from conftest import ARCHITECTURES, minilm_dir

TINY_BERT = ["--model-type", "bert", "--config",
             ",".join(f"{k}={v}" for k, v in ARCHITECTURES["bert"]["config"].items())]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "modelexport.cli", *args],
        capture_output=True, text=True, env=full_env, timeout=600,
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("modelexport: error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def test_help_answers_without_importing_the_export_stack() -> None:
    code = (
        "import sys, modelexport.cli as c\n"
        "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('torch', 'transformers', 'onnx') if m in sys.modules])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "export" in proc.stdout and "validate" in proc.stdout
    assert proc.stdout.strip().endswith("[]")


def test_export_pretrained_local_dir_then_validate(tmp_path: Path) -> None:
    output = tmp_path / "out" / "minilm.onnx"
    proc = run("export", minilm_dir(), "-o", str(output), "--validate")
    assert proc.returncode == 0, proc.stderr
    assert "validated: onnx.checker ok" in proc.stdout
    sidecar = json.loads(output.with_name("minilm.hierarchy.json").read_text())
    assert sidecar["source"] == {"kind": "local", "path": minilm_dir(), "seed": 0,
                                 "model_class": "AutoModel", "trust_remote_code": False}
    assert sidecar["export"]["requested"] == "auto"
    assert set(sidecar["timings"]) >= {"load", "inputs", "trace", "export", "project", "write",
                                       "validate"}
    assert [p.name for p in sorted(output.parent.iterdir())] == [
        "minilm.hierarchy.json", "minilm.onnx"]  # no temporary files left behind
    proc = run("validate", str(output))
    assert proc.returncode == 0, proc.stderr
    assert "tags agree" in proc.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--model-type", "no-such-arch"], "unknown model type 'no-such-arch'"),
        (["./no/such/dir"], "./no/such/dir: no such directory"),
        ([*TINY_BERT, "--input", "input_ids=1xA"], "expected NAME=DIMxDIM"),
        ([*TINY_BERT, "--input", "pixel_values=1x3x8x8"], "pixel_values: not a parameter"),
        ([*TINY_BERT, "--exporter", "dynamo", "--opset", "17"], "use --opset 18 or more"),
        ([*TINY_BERT, "--model-class", "AutoNothing"], "unknown model class 'AutoNothing'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    proc = run("export", *args, "-o", str(tmp_path / "m.onnx"))
    assert proc.returncode == 2
    assert expected in one_error_line(proc)
    assert not (tmp_path / "m.onnx").exists()


def test_hub_model_without_network_or_cache_fails_clearly(tmp_path: Path) -> None:
    proc = run("export", "acme/absent-model", "--revision", "0" * 40, "-o",
               str(tmp_path / "m.onnx"), env={"HF_HOME": str(tmp_path / "hf")})
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert "acme/absent-model@" in line and "not in the local hub cache" in line


def make_hub_cache(root: Path, repo: str, revision: str) -> None:
    """The layout huggingface_hub keeps on disk, holding a small saved BERT."""
    from transformers import AutoConfig, AutoModel

    repo_dir = root / f"models--{repo.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / revision
    config = AutoConfig.for_model("bert", **ARCHITECTURES["bert"]["config"])
    AutoModel.from_config(config).save_pretrained(snapshot)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(revision)


def test_hub_model_loads_through_huggingface_hub_from_its_cache(tmp_path: Path) -> None:
    revision = "a" * 40
    make_hub_cache(tmp_path / "hub", "acme/tiny-bert", revision)
    env = {"HF_HUB_CACHE": str(tmp_path / "hub")}
    output = tmp_path / "bert.onnx"
    proc = run("export", "acme/tiny-bert", "--revision", revision, "-o", str(output), env=env)
    assert proc.returncode == 0, proc.stderr
    sidecar = json.loads((tmp_path / "bert.hierarchy.json").read_text())
    assert sidecar["source"]["kind"] == "hub"
    assert sidecar["source"]["revision"] == revision
    assert "download" in sidecar["timings"]
    # Without a revision it still resolves (refs/main) but warns that nothing is pinned.
    proc = run("export", "acme/tiny-bert", "-o", str(output), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "no --revision given" in proc.stderr


def test_clean_export_has_no_node_metadata(tmp_path: Path) -> None:
    output = tmp_path / "clean.onnx"
    proc = run("export", *TINY_BERT, "-o", str(output), "--clean")
    assert proc.returncode == 0, proc.stderr
    model = onnx.load(output)
    assert not any(p.key.startswith("modelexport.") for n in model.graph.node
                   for p in n.metadata_props)
    assert {p.key for p in model.metadata_props} >= {"modelexport.schema_version"}
    assert run("validate", str(output)).returncode == 0


def test_validate_catches_a_tampered_tag_and_a_broken_sidecar(tmp_path: Path) -> None:
    output = tmp_path / "m.onnx"
    assert run("export", *TINY_BERT, "-o", str(output)).returncode == 0
    sidecar_file = tmp_path / "m.hierarchy.json"
    sidecar = json.loads(sidecar_file.read_text())

    model = onnx.load(output)
    victim = next(n for n in model.graph.node if n.metadata_props)
    for prop in victim.metadata_props:
        if prop.key == "modelexport.module":
            prop.value = "pooler"
    onnx.save(model, output)
    proc = run("validate", str(output))
    assert proc.returncode == 1
    assert victim.name in proc.stderr

    sidecar["statistics"]["surprise"] = 1
    del sidecar["nodes"][0]["how"]
    sidecar_file.write_text(json.dumps(sidecar))
    proc = run("validate", str(sidecar_file))
    assert proc.returncode == 1
    assert "nodes[0]: 'how' is a required property" in proc.stderr
    assert "statistics: Additional properties are not allowed ('surprise'" in proc.stderr


def test_validate_manifests_without_the_export_stack(tmp_path: Path) -> None:
    good = tmp_path / "models.yaml"
    good.write_text("models:\n  - name: a\n    source: {id: org/a}\n")
    bad = tmp_path / "broken.yml"
    bad.write_text("models:\n  - name: a\n    source: {path: x}\n    repeets: 3\n")
    code = (
        "import sys\nfrom modelexport import cli\nrc = cli.main(sys.argv[1:])\n"
        "print('heavy:', [m for m in ('torch', 'onnx', 'transformers') if m in sys.modules])\n"
        "sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code, "validate", str(good), str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"{good}: valid manifest, 1 models" in proc.stdout
    assert f"{good}:3: models[0].source: no revision" in proc.stderr
    assert f"{bad}:4: models[0].repeets: unknown key (did you mean 'repeats'?)" in proc.stderr
    assert "heavy: []" in proc.stdout


@pytest.mark.parametrize(
    ("option", "expected"),
    [(["--repeats", "0"], "--repeats 0: needs at least 1"),
     (["--threshold", "-0.1"], "--threshold -0.1: a slowdown, e.g. 0.10 for +10 %")],
)
def test_check_refuses_meaningless_overrides(tmp_path: Path, option: list[str], expected: str
                                             ) -> None:
    manifest = tmp_path / "models.yaml"
    manifest.write_text("models:\n  - name: a\n    source: {config: {model_type: bert}}\n")
    proc = run("check", str(manifest), *option)
    assert proc.returncode == 2
    assert expected in one_error_line(proc)
