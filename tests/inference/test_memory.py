"""Where inference memory goes, per module: by hand (pure), then a real BERT in the real
onnxruntime against the parameters its PyTorch modules own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from model_explorer_onnx.main import ONNXAdapter

from modelexport import structure
from modelexport.inference import events, memory, session
from modelexport.inference.records import ModuleTime, NodeTime, Profile, Settings
from modelexport.sources import load
from modelexport.structure import ModuleStructure, Structure

from harness import run_cli, source_for

SETTINGS = Settings(runs=3, warmup=1, threads=1, optimization="all")


def test_each_module_has_its_own_and_its_descendants_bytes() -> None:
    def kernel(name: str, module: str | None, output_bytes: int, temporary_bytes: int = 0
               ) -> NodeTime:
        return NodeTime(name, "MatMul", module, "node", (name,), 0.1, 1,
                        output_bytes=output_bytes, temporary_bytes=temporary_bytes)

    profile = Profile("m.onnx", SETTINGS, (1.0,), (1.0,), 1.0,
                      (ModuleTime("", "Net", 0, 1, None, None, 1, ()),),
                      (kernel("a", "encoder.layer.0.dense", 4000, 300),
                       kernel("b", "encoder.layer.1.dense", 4000),
                       kernel("c", "", 100), kernel("lost", None, 50, 7)),
                      arena_peak_bytes=123_456)
    weights = Structure((), (), 17, 8, 4, {}, 10_500, {
        "encoder.layer.0.dense": ModuleStructure("Linear", 2, {}, 5000),
        "encoder.layer.1.dense": ModuleStructure("Linear", 2, {}, 5000),
        "": ModuleStructure("Net", 1, {}, 500)})
    found = memory.memory(profile, weights)
    rows = {m.path: m for m in found.modules}
    assert (rows["encoder"].weight_bytes, rows["encoder"].activation_bytes) == (10_000, 8000)
    assert rows["encoder.layer.0.dense"].own_weight_bytes == 5000
    assert rows["encoder.layer.0.dense"].cls == "Linear"
    assert (rows[""].own_activation_bytes, rows[""].activation_bytes) == (100, 8100)
    assert (found.activation_bytes, found.unattributed_activation_bytes) == (8150, 50)
    assert found.to_json()["arena_peak_bytes"] == 123_456
    # Temporaries as activations: own, then with the descendants'; the total counts all.
    assert (rows["encoder.layer.0.dense"].own_temporary_bytes,
            rows["encoder"].temporary_bytes, rows["encoder.layer.1"].temporary_bytes) == (
                300, 300, 0)
    assert (rows[""].own_temporary_bytes, found.temporary_bytes) == (0, 307)


@pytest.mark.export
def test_a_real_berts_module_weights_are_the_parameters_each_module_owns(exports) -> None:
    path = exports.get("bert", "torchscript").onnx_path
    found, _ = session.run(path, SETTINGS)
    result = memory.memory(found, structure.of_file(path))
    rows = {m.path: m for m in result.modules}
    model = load(source_for("bert")).model
    for name, module in model.named_modules():
        owned = sum(p.numel() * p.element_size() for p in module.parameters(recurse=False))
        if owned:
            assert rows[name].own_weight_bytes == owned, name
    # Every kernel's outputs are some module's: nothing unattributed at all.
    assert result.unattributed_activation_bytes == 0 < result.activation_bytes
    assert rows[""].activation_bytes == result.activation_bytes
    assert rows["encoder.layer.0"].activation_bytes > rows["pooler"].activation_bytes
    assert result.arena_peak_bytes > 0


@pytest.mark.export
def test_each_kernels_temporaries_are_what_onnxruntime_says_it_allocated(exports,
                                                                         tmp_path: Path
                                                                         ) -> None:
    """ORT's per-node statistics, taken apart from the profile by a session of its own on
    the same inputs, are the temporaries the profile gives each kernel, on its module."""
    import onnxruntime as ort

    path = exports.get("minilm", "dynamo").onnx_path
    found, model = session.run(path, SETTINGS)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.collect_node_memory_stats_to_file",
                                     str(tmp_path / "nodes.csv"))
    alone = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    alone.run(None, session.feeds(model, []))
    said = {name: size for name, size in events.temporaries(
        (tmp_path / "nodes.csv").read_text(), {n.name for n in found.nodes}).items() if size}
    assert said and {n.name: n.temporary_bytes for n in found.nodes
                     if n.temporary_bytes} == said
    result = memory.memory(found, structure.of_file(path))
    rows = {m.path: m for m in result.modules}
    assert rows[""].temporary_bytes == result.temporary_bytes == sum(said.values())
    # Each layer's fused bias-and-GELU kernel takes a scratch copy of its output.
    assert rows["encoder.layer.0.intermediate"].temporary_bytes > 0


@pytest.mark.export
def test_profile_memory_prints_the_table_and_writes_it_to_json(exports, tmp_path: Path
                                                               ) -> None:
    path = exports.get("bert", "dynamo").onnx_path
    proc = run_cli("profile", str(path), "--runs", "3", "--memory", "--json", "p.json",
                   "--model-explorer", "o.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "\nmemory: weights " in proc.stdout and "own activations" in proc.stdout
    assert "own temporaries" in proc.stdout
    document = json.loads((tmp_path / "p.json").read_text())
    # The activations as a Model Explorer overlay of its own, keyed as the real adapter
    # names the nodes, adding up to the outputs of every kernel that computes exported
    # nodes (those ORT made up from nothing have none to show on).
    converted = ONNXAdapter().convert(str(path), {})["graphs"][0]
    (values,) = json.loads((tmp_path / "o.memory.json").read_text()).values()
    assert set(values["results"]) <= {node.id for node in converted.nodes}
    assert sum(v["value"] for v in values["results"].values()) == sum(
        node["output_bytes"] for node in document["nodes"] if node["members"]) > 0
    modules = {m["path"]: m for m in document["memory"]["modules"]}
    # The weights the modules' nodes read are the file's (dynamo's few folded constants aside).
    assert modules[""]["weight_bytes"] == pytest.approx(document["memory"]["weight_bytes"],
                                                        rel=0.01)
