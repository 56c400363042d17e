"""Dynamic axes and output names: exports people deploy run at other sizes than traced."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from modelexport import inputs, onnxfile
from modelexport.errors import UsageError
from modelexport.htp.export import export
from modelexport.htp.options import ExportOptions
from modelexport.sources import Source, load

from harness import EXPORTERS, architectures, config_args, minilm_dir, one_error_line, run_cli

pytestmark = pytest.mark.export


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_minilm_by_default_runs_at_batch_3_and_37_tokens(exports, exporter: str) -> None:
    path = exports.get("minilm", exporter).onnx_path
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["last_hidden_state", "pooler_output"]
    assert [i.shape for i in session.get_inputs()] == [["batch_size", "sequence_length"]] * 3
    generator = torch.Generator().manual_seed(3)
    feed = {"input_ids": torch.randint(0, 30000, (3, 37), generator=generator),
            "attention_mask": torch.ones(3, 37, dtype=torch.int64),
            "token_type_ids": torch.zeros(3, 37, dtype=torch.int64)}
    got = session.run(None, {k: v.numpy() for k, v in feed.items()})
    with torch.no_grad():
        expected = load(Source("local", path=minilm_dir())).model(**feed)
    assert got[0].shape == (3, 37, 384)
    assert np.abs(got[0] - expected.last_hidden_state.numpy()).max() <= 1e-4
    assert np.abs(got[1] - expected.pooler_output.numpy()).max() <= 1e-4


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_static_and_named_axes(tmp_path: Path, exporter: str) -> None:
    source = architectures()["bert"]
    static = export(source, tmp_path / "static.onnx",
                    ExportOptions(exporter=exporter, dynamic={}))  # type: ignore[arg-type]
    assert onnxfile.read(static.onnx_path).inputs[0].shape == (1, 16)
    named = export(source, tmp_path / "named.onnx", ExportOptions(
        exporter=exporter, validate=True,  # type: ignore[arg-type]
        dynamic={"input_ids": {0: "n", 1: "tokens"}, "attention_mask": {0: "n", 1: "tokens"},
                 "token_type_ids": {0: "n", 1: "tokens"}}))
    skeleton = onnxfile.read(named.onnx_path)
    assert [s.shape for s in skeleton.inputs] == [("n", "tokens")] * 3
    assert [s.shape for s in skeleton.outputs] == [("n", "tokens", 64), ("n", 64)]
    parity = named.sidecar.validation.parity
    assert parity is not None and parity.passed  # at the traced sizes and at others


def test_dynamic_options_are_checked_before_anything_runs(tmp_path: Path) -> None:
    assert inputs.parse_axes("input_ids:0=batch,1=seq") == ("input_ids", {0: "batch", 1: "seq"})
    for text in ("input_ids", "input_ids:a=batch", "input_ids:0=1x"):
        with pytest.raises(UsageError, match="expected NAME:AXIS=DIM"):
            inputs.parse_axes(text)
    args = [*config_args("bert"), "-o", str(tmp_path / "m.onnx")]
    proc = run_cli("export", *args, "--dynamic", "pixel_values:0=batch")
    assert proc.returncode == 2
    assert "--dynamic pixel_values: not an input of this model" in one_error_line(proc)
    proc = run_cli("export", *args, "--dynamic", "input_ids:2=width")
    assert "--dynamic input_ids: axis 2 of a 2-d input" in one_error_line(proc)
    proc = run_cli("export", *args, "--dynamic", "input_ids:0=b", "--static")
    assert "give --dynamic or --static, not both" in one_error_line(proc)
