"""Profiles of real exports in the real onnxruntime, read back through the real Model
Explorer ONNX adapter: attribution through ORT's optimized graph, sums, overlay, grouping."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import onnx_ir
import pytest
from model_explorer_onnx.main import ONNXAdapter, get_node_namespace

from modelexport.gate import results
from modelexport.gate.latency import Latency, module_deltas
from modelexport.gate.records import Measured
from modelexport.htp.export import export
from modelexport.htp.options import ExportOptions
from modelexport.inference import overlay, session
from modelexport.inference.records import Profile, Settings
from modelexport.inputs import InputSpec
from modelexport.sources import Source

from harness import run_cli

PROFILED = ["bert", "gpt2", "vit", "resnet", "t5", "minilm"]
SETTINGS = Settings(runs=6, warmup=1, threads=1, optimization="all")


@pytest.mark.export
@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
@pytest.mark.parametrize("name", PROFILED)
def test_every_kernel_finds_its_module_and_the_times_add_up(exports, name: str,
                                                              exporter: str) -> None:
    path = exports.get(name, exporter).onnx_path
    found, _ = session.run(path, SETTINGS)
    assert found.nodes and all(node.module is not None for node in found.nodes)
    # The rest sits at the root: what the model's forward computes there itself (masks,
    # shapes), a fixed cost of under 0.3 ms that these small configs make up to a quarter
    # of; at full size it is well under 1 % (docs/profile.md).
    assert found.attributed > 0.7
    assert sum(m.self_ms for m in found.modules) == pytest.approx(found.total_ms, rel=0.01)
    assert found.modules[0].path == "" and found.modules[0].inclusive_ms == found.total_ms
    assert len(found.latency_ms) == SETTINGS.runs


@pytest.mark.export
@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
@pytest.mark.parametrize("name", ["bert", "resnet"])
def test_model_explorer_opens_every_node_under_its_module_and_takes_the_overlay(
        exports, name: str, exporter: str) -> None:
    path = exports.get(name, exporter).onnx_path
    found, model = session.run(path, SETTINGS)
    graph = onnx_ir.load(path).graph
    modules = model.by_node
    for node in graph:
        module = modules[node.name]
        assert get_node_namespace(node) == (module.split(".") if module else []), node.name
    converted = ONNXAdapter().convert(str(path), {})["graphs"][0]
    data = overlay.overlay(found, model.graph.nodes, model.graph.name)
    keys = data[converted.id]["results"]
    assert keys and set(keys) <= {node.id for node in converted.nodes}
    assert sum(v["value"] for v in keys.values()) == pytest.approx(
        sum(n.ms for n in found.nodes if n.members), rel=1e-3)


@pytest.mark.export
@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_a_conv_fused_with_the_next_modules_relu_is_the_convs_time(exports,
                                                                   exporter: str) -> None:
    # ORT fuses each ResNetConvLayer's convolution with its activation, a sibling module.
    found, _ = session.run(exports.get("resnet", exporter).onnx_path, SETTINGS)
    convs = [node for node in found.nodes if node.op_type == "Conv"]
    fused = [node for node in convs if node.absorbed]
    assert fused, [(node.name, node.members) for node in convs]
    assert any(module.endswith(".activation") for node in fused for module in node.absorbed)
    # Every convolution's time is a convolution module's own, none its parent layer's.
    assert all(node.module is not None and node.module.endswith(".convolution")
               for node in convs), [(n.name, n.module, n.absorbed) for n in convs]
    assert Profile.from_json(json.loads(json.dumps(found.to_json()))).nodes == found.nodes


def bert(intermediate_size: int) -> Source:
    return Source(kind="config", model_type="bert",
                  config={"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
                          "intermediate_size": intermediate_size})


@pytest.mark.export
def test_a_wider_feed_forward_is_named_where_inference_moved(tmp_path: Path) -> None:
    profiles = []
    for width in (512, 2048):
        path = tmp_path / f"bert-{width}.onnx"
        export(bert(width), path, ExportOptions(exporter="torchscript"))
        # 128 tokens: the feed-forward's MatMuls then take milliseconds, far above the noise
        # of the modules that did not change.
        longer = [InputSpec(name, (2, 128), "int64") for name in
                  ("input_ids", "attention_mask", "token_type_ids")]
        found, _ = session.run(path, Settings(10, 2, 1, "all"), longer)
        profiles.append(Latency.of(found))
    leading = module_deltas(*profiles, limit=2)
    assert len(leading) == 2  # named, not merely none wrong
    assert {row.where for row in leading} <= {"encoder.layer.{0,1}.intermediate.dense",
                                              "encoder.layer.{0,1}.output.dense",
                                              "encoder.layer.{0,1}.intermediate"}
    assert all(row.delta > 0 and row.count == 2 for row in leading)


@pytest.mark.export
def test_a_profile_writes_no_copy_of_the_weights(tmp_path: Path) -> None:
    """ORT saves the graph it optimized only with its weights; they must not land in the
    scratch folder. Here that folder is a tmpfs of 2 MB (in a user and mount namespace) and
    the model holds 20 MB of weights."""
    path = tmp_path / "bert.onnx"
    export(bert(2048), path, ExportOptions(exporter="torchscript"))
    assert path.stat().st_size > 16 * 2**20
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    mount = f'mount -t tmpfs -o size=2m tmpfs {scratch} && TMPDIR={scratch} "$@"'
    proc = subprocess.run(
        ["unshare", "--map-root-user", "--mount", "sh", "-c", mount, "sh", sys.executable,
         "-m", "modelexport", "profile", str(path), "--runs", "3", "--json", "p.json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert Profile.from_json(json.loads((tmp_path / "p.json").read_text())).attributed


@pytest.mark.export
def test_the_gate_profiles_where_the_manifest_asks_and_keeps_it(tmp_path: Path) -> None:
    (tmp_path / "models.yaml").write_text(textwrap.dedent("""\
        defaults: {repeats: 1, thresholds: {floor: 3600}}  # no verdict from timing
        models:
          - name: bert
            source: {config: {model_type: bert, hidden_size: 32, num_hidden_layers: 1,
                              num_attention_heads: 2, intermediate_size: 64}}
            inference: {runs: 4, warmup: 1, floor_ms: 3600000}
        """))
    first = run_cli("check", "models.yaml", "--baseline", "b.json", "--update-baseline",
                    cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    again = run_cli("check", "models.yaml", "--baseline", "b.json", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    record = results.load(tmp_path / "modelexport-out" / "results.json").models["bert"]
    assert isinstance(record, Measured) and record.inference is not None
    assert len(record.inference.latency_ms) == 4
    assert record.inference.modules[""][1] > 0  # the root's inclusive time
