"""Decoders exported with their KV cache (``--task text-generation-with-past``): the six small
real architectures of examples/decoders.yaml through dynamo, run in onnxruntime as they are
deployed, against PyTorch's own forward with its own cache."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from modelexport import kvcache, sources
from modelexport.gate import manifest
from modelexport.htp.export import ExportResult, export_module
from modelexport.htp.options import ExportOptions
from modelexport.sources import Source
from modelexport.verify import generation
from tests.harness import ROOT, measured, one_error_line, run_cli

TOLERANCE = 1e-4


@cache
def decoders() -> dict[str, Source]:
    loaded = manifest.load(ROOT / "examples" / "decoders.yaml")
    return {spec.name: spec.source for spec in loaded.models}


def _feeds(session: onnxruntime.InferenceSession, layout: kvcache.Layout, past: int,
           new: int) -> dict[str, np.ndarray]:
    shapes = {"input_ids": (1, new), "attention_mask": (1, past + new),
              "position_ids": (1, new)}
    feeds: dict[str, np.ndarray] = {}
    for value in session.get_inputs():
        if value.name in shapes:
            feeds[value.name] = (np.arange(past, past + new)[None] if value.name == "position_ids"
                                 else np.ones(shapes[value.name], np.int64))
        else:
            layer, kind = int(value.name.split(".")[1]), value.name.split(".")[2]
            heads, size = layout.layers[layer][kvcache.KINDS.index(kind)]
            feeds[value.name] = np.zeros((1, heads, past, size), np.float32)
    return feeds


@pytest.mark.parametrize("name", list(decoders()))
def test_a_decoder_exports_with_its_cache_and_generates_as_pytorch_does(
        name: str, tmp_path: Path) -> None:
    source = decoders()[name]
    loaded = sources.load(source)
    result: ExportResult = export_module(loaded.model, loaded.config, tmp_path / "m.onnx",
                                         ExportOptions(validate=True), source)
    record = result.sidecar
    assert record.export.exporter == "dynamo"
    assert record.statistics.unattributed == 0
    assert record.validation.parity is not None and record.validation.parity.passed
    layout = kvcache.layout_of(loaded.model)
    assert layout is not None

    session = onnxruntime.InferenceSession(str(result.onnx_path),
                                           providers=["CPUExecutionProvider"])
    names = [value.name for value in session.get_inputs()]
    pasts = [kvcache.past_name(i, kind) for i in range(len(layout.layers))
             for kind in kvcache.KINDS]
    assert names == [*layout.takes, *pasts]
    outputs = [value.name for value in session.get_outputs()]
    assert outputs == ["logits", *(p.replace("past_key_values", "present") for p in pasts)]
    for past in (0, 1, 37):  # one session, three cache lengths
        got = session.run(None, _feeds(session, layout, past, 2))
        assert all(present.shape[2] == past + 2 for present in got[1:])

    for padding in generation.PADDING:  # batch 1, and batch 3 padded on the left
        run = generation.generate(session, loaded.model, padding, seed=1, steps=16)
        assert len(run.differences) == 17
        assert max(run.differences) <= TOLERANCE
        assert run.other_tokens == ()

    sidecar = json.loads(result.sidecar_path.read_text())
    chains = {module["path"]: module["class_chain"] for module in sidecar["modules"]}
    producers = {output: entry for node, entry in zip(_nodes(result.onnx_path),
                                                      sidecar["nodes"], strict=True)
                 for output in node}
    for index, present in enumerate(outputs[1:]):
        module = producers[present]["module"]  # the op that grows the cache
        assert f".{index // 2}." in f".{module}."
        assert chains[module].rpartition("/")[2].endswith("Attention"), chains[module]


def _nodes(path: Path) -> list[list[str]]:
    import onnx

    return [list(node.output) for node in onnx.load(str(path)).graph.node]


def test_an_encoder_cannot_be_exported_with_a_cache(tmp_path: Path) -> None:
    proc = run_cli("export", "--model-type", "bert", "--config",
                   "hidden_size=64,num_hidden_layers=2,num_attention_heads=2,intermediate_size=128",
                   "--task", kvcache.TASK, "-o", str(tmp_path / "m.onnx"))
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "bert (config)" in line and "no key/value cache" in line
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(("args", "expected"), [
    (["--exporter", "torchscript"], "TorchScript exporter cannot take a KV cache"),
    (["--input", "input_ids=1x8:int64"], "do not go with --task"),
])
def test_what_a_cache_export_cannot_do_is_one_line(tmp_path: Path, args: list[str],
                                                   expected: str) -> None:
    llama = decoders()["llama"]
    overrides = ",".join(f"{k}={v}" for k, v in llama.config.items())
    proc = run_cli("export", "--model-type", "llama", "--config", overrides, "--task",
                   kvcache.TASK, *args, "-o", str(tmp_path / "m.onnx"))
    assert proc.returncode == 2
    assert expected in one_error_line(proc)


def test_a_manifest_task_loads_a_causal_lm_called_with_its_cache() -> None:
    source = decoders()["gpt2"]
    assert source.task == kvcache.TASK
    assert source.model_class == "AutoModelForCausalLM"
    assert Source.from_json(source.to_json()) == source


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small Llama of examples/decoders.yaml, exported with its cache."""
    source = decoders()["llama"]
    output = tmp_path_factory.mktemp("llama") / "llama.onnx"
    loaded = sources.load(source)
    export_module(loaded.model, loaded.config, output, ExportOptions(), source)
    return output


def test_profile_times_the_prefill_and_a_decode_step_each_by_module(llama: Path,
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "profile.json"
    proc = run_cli("profile", str(llama), "--runs", "3", "--prompt-tokens", "12",
                   "--new-tokens", "6", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "prefill: 12 prompt tokens, empty cache" in proc.stdout
    assert "decode: 1 token after 15 cached" in proc.stdout
    phases = json.loads(out.read_text())
    assert set(phases) == {"prefill", "decode"}
    for found in phases.values():
        assert found["attributed"] >= 0.99
        modules = {module["path"] for module in found["modules"]}
        assert {"model.layers.0.self_attn", "model.layers.1.mlp", "lm_head"} <= modules


def test_the_gate_keeps_a_decoders_first_token_beside_its_per_token_latency(
        llama: Path) -> None:
    from modelexport.gate import alternate
    from modelexport.gate.latency import FIRST_TOKEN, Latency
    from modelexport.gate.worker import profile_export
    from modelexport.inference.records import Settings

    settings = Settings(runs=3, warmup=1, threads=1, optimization="all")
    per_token, first = profile_export(llama, settings, lambda _: None, keep=False)
    assert first is not None and first.name == FIRST_TOKEN
    assert per_token.metric.name == "inference" and first.metric.name == FIRST_TOKEN
    assert "model.layers.1.self_attn" in per_token.modules
    # As results keep them: both read back as they were.
    record = measured([1.0], inference=per_token.to_json(), first_token=first.to_json())
    assert (record.inference, record.first_token) == (per_token, first)
    # Paired: base and head side by side, both phases.
    document = alternate.profiles({"paths": [str(llama), str(llama)],
                                   "settings": vars(settings), "timeout_s": 120},
                                  llama.parent / "stage")
    assert len(document["latencies"]) == len(document["first_token"]) == 2
    assert all(Latency.from_json(one).settings == settings for one in document["first_token"])


def test_the_cache_is_part_of_the_signature_the_structure_gate_compares(llama: Path) -> None:
    from dataclasses import replace

    from modelexport import diff, structure

    found = structure.of_file(llama)
    names = [sig.name for sig in (*found.inputs, *found.outputs)]
    assert "past_key_values.1.value" in names and "present.1.value" in names
    fewer = replace(found, outputs=tuple(s for s in found.outputs if s.name != "present.1.value"))
    changed = diff.diff(found, fewer)
    assert any("present.1.value" in line for line in changed.signature)
