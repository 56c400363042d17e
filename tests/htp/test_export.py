"""Pipeline behaviour: exporter fallback, opset rules, decoders, failures leave nothing."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch

from modelexport import sidecar
from modelexport.errors import ExportFailed
from modelexport.htp.export import export, export_module
from modelexport.htp.options import ExportOptions
from modelexport.inputs import InputSpec
from modelexport.sources import Source

pytestmark = pytest.mark.export

LLAMA = Source("config", model_type="llama", config={
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000})
SWIN = Source("config", model_type="swin", config={
    "embed_dim": 16, "depths": [1, 1], "num_heads": [1, 2], "image_size": 64,
    "patch_size": 4, "window_size": 4})


class Differences(torch.nn.Module):
    """``torch.diff`` has no TorchScript ONNX symbolic (what breaks Llama masks there)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(8, 8)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.diff(self.proj(features), dim=-1)


def test_auto_falls_back_to_dynamo_and_records_why(tmp_path: Path) -> None:
    options = ExportOptions(inputs=(InputSpec("features", (2, 8)),), validate=True)
    result = export_module(Differences().eval(), None, tmp_path / "diff.onnx", options,
                           Source("config", model_type="differences"))
    assert result.sidecar.export.exporter == "dynamo"
    fallback = result.sidecar.export.fallback
    assert fallback is not None and fallback.exporter == "torchscript"
    assert "diff" in fallback.error
    assert result.sidecar.validation.parity.passed
    tagged = {e.module for e in result.sidecar.nodes if e.op_type in {"MatMul", "Gemm"}}
    assert tagged == {"proj"}


WAV2VEC2 = Source("config", model_type="wav2vec2", config={
    "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
    "intermediate_size": 64, "conv_dim": [16, 16], "conv_stride": [5, 2],
    "conv_kernel": [10, 3], "num_feat_extract_layers": 2})
WHISPER = Source("config", model_type="whisper", config={
    "d_model": 32, "encoder_layers": 1, "decoder_layers": 1, "encoder_attention_heads": 2,
    "decoder_attention_heads": 2, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64,
    "max_source_positions": 50, "num_mel_bins": 16})


@pytest.mark.parametrize(
    "source", [LLAMA, SWIN, WAV2VEC2, WHISPER], ids=["llama", "swin", "wav2vec2", "whisper"]
)
def test_decoders_swin_and_audio_export_under_auto(tmp_path: Path, source: Source) -> None:
    result = export(source, tmp_path / "m.onnx", ExportOptions(validate=True))
    assert result.sidecar.validation.parity.passed
    stats = result.statistics
    assert stats.unattributed <= 0.02 * stats.nodes


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_decoder_outputs_carry_no_kv_cache(tmp_path: Path, exporter: str) -> None:
    result = export(LLAMA, tmp_path / "m.onnx", ExportOptions(exporter=exporter))
    outputs = onnx.load(result.onnx_path, load_external_data=False).graph.output
    assert len(outputs) == 1  # last_hidden_state only: no past key/values


def test_explicit_exporter_failure_names_model_and_cause_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    with pytest.raises(ExportFailed) as caught:
        export(SWIN, tmp_path / "swin.onnx", ExportOptions(exporter="dynamo"))
    message = str(caught.value)
    assert message.startswith("swin (config): dynamo export failed:")
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_auto_with_an_opset_below_18_uses_torchscript(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU()).eval()
    # Sequential.forward takes ``input``.
    options = ExportOptions(opset=17, inputs=(InputSpec("input", (2, 8)),))
    result = export_module(model, None, tmp_path / "seq.onnx", options,
                           Source("config", model_type="sequential"))
    assert (result.sidecar.export.exporter, result.sidecar.export.opset) == \
        ("torchscript", 17)
    assert {e.module for e in result.sidecar.nodes} == {"0", "1"}


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_external_data_keeps_weights_beside_the_graph(tmp_path: Path, exporter: str) -> None:
    # The same route a model over 2 GB takes, on a small one.
    source = Source("config", model_type="bert", config={
        "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 128})
    options = ExportOptions(exporter=exporter, external_data=True, validate=True)
    result = export(source, tmp_path / "m.onnx", options)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m.hierarchy.json", "m.onnx", "m.onnx.data"]
    assert (tmp_path / "m.onnx").stat().st_size < (tmp_path / "m.onnx.data").stat().st_size
    assert result.sidecar.export.external_data is True
    assert result.sidecar.validation.parity.passed


def test_export_over_old_files_replaces_them_and_writes_through_a_symlink(
    tmp_path: Path,
) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(8, 4)).eval()
    options = ExportOptions(exporter="torchscript", inputs=(InputSpec("input", (2, 8)),))
    source = Source("config", model_type="sequential")
    (tmp_path / "real.onnx").write_bytes(b"an old export")
    (tmp_path / "link.onnx").symlink_to("real.onnx")
    (tmp_path / "plain.onnx").write_bytes(b"an old export")
    for name in ("link.onnx", "plain.onnx"):
        export_module(model, None, tmp_path / name, options, source)
    assert (tmp_path / "link.onnx").is_symlink()
    for name in ("real.onnx", "plain.onnx"):
        onnx.checker.check_model(onnx.load(tmp_path / name), full_check=True)
    # The sidecar sits beside the name the user gave, where ``validate`` looks for it.
    assert sidecar.verify(tmp_path / "link.onnx").nodes == 1
