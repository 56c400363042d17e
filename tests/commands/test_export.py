"""``modelexport export`` as a user runs it: real processes, real files, exit codes and
messages."""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx
import pytest

from harness import (
    TRACED_OTHERWISE,
    architectures,
    config_args,
    minilm_dir,
    one_error_line,
    outside_actions,
    run_cli,
)

pytestmark = pytest.mark.export
TINY_BERT = config_args("bert")


def test_export_pretrained_local_dir_then_validate(tmp_path: Path) -> None:
    output = tmp_path / "out" / "minilm.onnx"
    proc = run_cli("export", minilm_dir(), "-o", str(output), "--validate")
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
    proc = run_cli("validate", str(output))
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
        # A config keeps any keyword: a typo would export a model of the default size.
        (["--model-type", "bert", "--config", "hidden_sizee=64"],
         "BertConfig has no 'hidden_sizee' (did you mean 'hidden_size'?)"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    proc = run_cli("export", *args, "-o", str(tmp_path / "m.onnx"))
    assert proc.returncode == 2
    assert expected in one_error_line(proc)
    assert not (tmp_path / "m.onnx").exists()


def test_hub_model_without_network_or_cache_fails_clearly(tmp_path: Path) -> None:
    proc = run_cli("export", "acme/absent-model", "--revision", "0" * 40, "-o",
               str(tmp_path / "m.onnx"), add_env={"HF_HOME": str(tmp_path / "hf")})
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert "acme/absent-model@" in line and "not in the local hub cache" in line


def make_hub_cache(root: Path, repo: str, revision: str) -> None:
    """The layout huggingface_hub keeps on disk, holding a small saved BERT."""
    from transformers import AutoConfig, AutoModel

    bert = architectures()["bert"]

    repo_dir = root / f"models--{repo.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / revision
    config = AutoConfig.for_model(str(bert.model_type), **bert.config)
    AutoModel.from_config(config).save_pretrained(snapshot)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(revision)


def test_hub_model_loads_through_huggingface_hub_from_its_cache(tmp_path: Path) -> None:
    revision = "a" * 40
    make_hub_cache(tmp_path / "hub", "acme/tiny-bert", revision)
    env = {"HF_HUB_CACHE": str(tmp_path / "hub")}
    output = tmp_path / "bert.onnx"
    proc = run_cli("export", "acme/tiny-bert", "--revision", revision, "-o", str(output),
                   add_env=env)
    assert proc.returncode == 0, proc.stderr
    sidecar = json.loads((tmp_path / "bert.hierarchy.json").read_text())
    assert sidecar["source"]["kind"] == "hub"
    assert sidecar["source"]["revision"] == revision
    assert "download" in sidecar["timings"]
    # Without a revision it still resolves (refs/main) but warns that nothing is pinned.
    proc = run_cli("export", "acme/tiny-bert", "-o", str(output), add_env=env)
    assert proc.returncode == 0, proc.stderr
    assert "no --revision given" in proc.stderr


def test_clean_export_has_no_node_metadata(tmp_path: Path) -> None:
    output = tmp_path / "clean.onnx"
    proc = run_cli("export", *TINY_BERT, "-o", str(output), "--clean")
    assert proc.returncode == 0, proc.stderr
    model = onnx.load(output)
    assert not any(p.key.startswith("modelexport.") for n in model.graph.node
                   for p in n.metadata_props)
    assert {p.key for p in model.metadata_props} >= {"modelexport.schema_version"}
    assert run_cli("validate", str(output)).returncode == 0


def test_a_hub_model_without_network_fails_in_one_line_without_retries(tmp_path: Path) -> None:
    env = {k: v for k, v in outside_actions(os.environ).items() if k != "HF_HUB_OFFLINE"}
    proc = run_cli("export", "acme/absent-model", "--revision", "0" * 40, "-o",
                   str(tmp_path / "m.onnx"), env={**env, "HF_HOME": str(tmp_path / "hf")})
    assert proc.returncode == 1
    assert "acme/absent-model@" in one_error_line(proc)
    assert "Retrying" not in proc.stderr and "warning" not in proc.stderr.lower()




def test_a_failed_parity_check_names_the_module_where_it_starts(tmp_path: Path) -> None:
    (tmp_path / "traced.py").write_text(TRACED_OTHERWISE)
    proc = run_cli("export", "--factory", "traced:build", "--exporter", "torchscript",
                   "--validate", "-o", "t.onnx", cwd=tmp_path)
    assert proc.returncode == 1
    error = one_error_line(proc)
    assert "onnxruntime output differs from PyTorch by" in error
    assert "first divergence: `1` (adds" in error
