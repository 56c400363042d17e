"""``modelexport profile`` as a user runs it, on real exports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modelexport.commands import profile as command
from modelexport.inference.records import Profile, Settings

from harness import one_error_line, run_cli


@pytest.mark.export
def test_profile_prints_modules_and_writes_json_markdown_and_an_overlay(exports,
                                                                      tmp_path: Path) -> None:
    path = exports.get("bert", "torchscript").onnx_path
    proc = run_cli("profile", str(path), "--runs", "5", "--threads", "1", "--json", "p.json",
                   "--markdown", "p.md", "--model-explorer", "me.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert "attributed to a module below the root" in lines[0]
    assert lines[1].split()[:3] == ["module", "class", "self"]
    assert lines[2].startswith("(root)") and "100.0%" in lines[2]
    assert any(line.strip().startswith("encoder ") for line in lines)
    found = Profile.from_json(json.loads((tmp_path / "p.json").read_text()))
    assert found.settings == Settings(5, command.WARMUP, 1, "all")
    assert "| `encoder.layer.0` | `BertLayer` |" in (tmp_path / "p.md").read_text()
    assert list(json.loads((tmp_path / "me.json").read_text())) == ["main_graph"]


@pytest.mark.export
def test_bad_input_is_one_line(exports, tmp_path: Path) -> None:
    import onnx

    path = exports.get("bert", "torchscript").onnx_path
    untagged = onnx.load(path)
    for node in untagged.graph.node:
        del node.metadata_props[:]
    onnx.save(untagged, tmp_path / "untagged.onnx")  # no sidecar beside it either
    refused = onnx.load(path)
    refused.graph.node[-1].op_type = "NoSuchOperator"
    onnx.save(refused, tmp_path / "refused.onnx")
    shutil.copy(path.with_suffix(".hierarchy.json"), tmp_path / "refused.hierarchy.json")
    for args, code, expected in (
            (["untagged.onnx"], 2, "untagged.onnx: no module tags"),
            ([str(path), "--input", "pixels=1x3"], 2, "--input pixels: not an input of"),
            ([str(path), "--input", "input_ids=2x3x4"], 1, "onnxruntime fails at inputs"),
            (["refused.onnx"], 1, "refused.onnx: onnxruntime refuses the model"),
            (["missing.onnx"], 2, "missing.onnx: no such file"),
            ([str(path), "--runs", "0"], 2, "--runs 0: needs at least 1"),
            ([str(path), "--runs", "100000"], 2, "onnxruntime's profiler keeps 1,000,000 "
                                                 "events, enough for"),
            ([str(path), "--json", "untagged.onnx/p.json"], 2,
             "--json untagged.onnx/p.json: cannot make its folder"),
            ([str(path), "--input", f"input_ids=1x{2**40}"], 2,
             "take 8,796,093 MB; at most 1,024 MB (--max-input-mb)"),
            ([str(path), "--max-input-mb", "0.0001"], 2, "at most 0.0001 MB (--max-input-mb)"),
            ([str(path), "--threads", "10000"], 2, "--threads 10000: at most 256"),
            ([str(path), "--threads", str(2**31)], 2, "at most 256"),
            ([str(path), "--timeout", "nan"], 2, "--timeout nan: a positive number")):
        proc = run_cli("profile", *args, "--runs", "2", cwd=tmp_path) if "--runs" not in args \
            else run_cli("profile", *args, cwd=tmp_path)
        assert proc.returncode == code, (args, proc.stderr)
        assert expected in one_error_line(proc)
