"""``modelexport diff``: exit codes, every kind of input, bad input, and no torch."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from modelexport.gate import results

from harness import (
    SDPA,
    config_args,
    measured,
    one_error_line,
    results_of,
    run_cli,
    toy_structure,
)


def exported(tmp_path: Path, name: str, *config: str) -> Path:
    output = tmp_path / f"{name}.onnx"
    args = config_args("bert")
    args[-1] = ",".join([args[-1], *config])
    proc = run_cli("export", *args, "-o", str(output))
    assert proc.returncode == 0, proc.stderr
    return output


@pytest.mark.export
def test_two_exports_differ_in_one_row_and_the_same_export_twice_not_at_all(tmp_path: Path
                                                                            ) -> None:
    two = exported(tmp_path, "two")
    three = exported(tmp_path, "three", "num_hidden_layers=3")
    proc = run_cli("diff", str(two), str(three))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["encoder.layer.2", "new", "module:"]
    assert lines[1].startswith("graph ") and len(lines) == 2
    # The sidecars name the same exports; JSON for scripts.
    proc = run_cli("diff", str(tmp_path / "two.hierarchy.json"), str(three), "--format", "json")
    assert proc.returncode == 1
    assert [m["where"] for m in json.loads(proc.stdout)["modules"]] == ["encoder.layer.2"]
    again = exported(tmp_path, "again")
    proc = run_cli("diff", str(two), str(again), "--format", "markdown")
    assert proc.returncode == 0
    assert re.fullmatch(r"\| `graph` \| `unchanged: \d+ nodes, 8\.2 MB weights` \|",
                        proc.stdout.splitlines()[-1])


@pytest.mark.export
def test_an_untagged_onnx_is_a_usage_error(tmp_path: Path) -> None:
    clean = tmp_path / "clean.onnx"
    assert run_cli("export", *config_args("bert"), "-o", str(clean), "--clean").returncode == 0
    (tmp_path / "clean.hierarchy.json").unlink()
    proc = run_cli("diff", str(clean), str(clean))
    assert proc.returncode == 2
    assert "clean.onnx: no module tags" in one_error_line(proc)


def gate_files(tmp_path: Path) -> tuple[Path, Path]:
    before = results_of({"bert": measured([1.0], structure=toy_structure(12).to_json()),
                         "old": measured([1.0])}, kind="baseline")
    after = replace(before, kind="results", models={
        "bert": measured([1.0], structure=toy_structure(12, attention=SDPA).to_json())})
    results.write(tmp_path / "baseline.json", before)
    results.write(tmp_path / "results.json", after)
    return tmp_path / "baseline.json", tmp_path / "results.json"


def test_two_gate_documents_compare_one_model_without_torch(tmp_path: Path) -> None:
    baseline, current = gate_files(tmp_path)
    code = ("import sys\nfrom modelexport import cli\nrc = cli.main(sys.argv[1:])\n"
            "print('heavy:', [m for m in ('torch', 'onnx', 'transformers') if m in sys.modules])"
            "\nsys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "diff", str(baseline), str(current),
                           "--model", "bert"], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("encoder.layer.{0..11}.attention.self  MatMul 2 -> 0")
    assert proc.stdout.splitlines()[-1] == "heavy: []"


@pytest.mark.parametrize(("args", "expected"), [
    (["--model", "gpt2"], "baseline.json: no model 'gpt2' (it holds: bert, old)"),
    ([], "baseline.json: holds 2 models; name one with --model"),
    (["--model", "old"], "baseline.json: old has no structure summary"),
])
def test_gate_documents_without_the_model_or_its_structure(tmp_path: Path, args: list[str],
                                                           expected: str) -> None:
    baseline, current = gate_files(tmp_path)
    proc = run_cli("diff", str(baseline), str(current), *args)
    assert proc.returncode == 2
    assert expected in one_error_line(proc)


@pytest.mark.parametrize(("content", "expected"), [
    ('{"benchmarks": []}', "neither an ONNX model, a modelexport sidecar nor a results"),
    ("{not json", "not JSON, nor an ONNX model"),
    ("name,seconds\n", "not an ONNX model"),
])
def test_a_file_of_another_kind_is_one_line_and_exit_2(tmp_path: Path, content: str,
                                                       expected: str) -> None:
    path = tmp_path / "other.json"
    path.write_text(content)
    proc = run_cli("diff", str(path), str(path))
    assert proc.returncode == 2
    assert expected in one_error_line(proc)
    assert "no such file" in one_error_line(run_cli("diff", str(tmp_path / "gone"), str(path)))
