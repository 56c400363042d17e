"""Structure summaries and their diff on real exports: what changed, and only where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelexport import diff, structure
from modelexport.errors import UsageError
from modelexport.htp.export import export
from modelexport.htp.options import ExportOptions
from modelexport.sources import Source
from modelexport.structure import Structure

from harness import ALL_MODELS, EXPORTERS, architectures

pytestmark = pytest.mark.export
HEAVY = {"MatMul", "Gemm", "Conv"}


def bert(tmp_path: Path, exporter: str, clean: bool = False, **changes: object) -> Structure:
    config = {**architectures()["bert"].config, **changes}
    name = "-".join(f"{k}={v}" for k, v in changes.items()) or "base"
    output = tmp_path / f"{name}-{exporter}{'-clean' if clean else ''}.onnx"
    export(Source("config", model_type="bert", config=config), output,
           ExportOptions(exporter=exporter, clean=clean))  # type: ignore[arg-type]
    return structure.of_file(output)


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", ALL_MODELS)
def test_summary_counts_every_tagged_node_once(exports, name: str, exporter: str
                                                         ) -> None:
    result = exports.get(name, exporter)
    summary = structure.of_file(result.onnx_path)
    tagged = [n for n in result.sidecar.nodes if n.module is not None]
    assert sum(m.nodes for m in summary.modules.values()) == len(tagged)
    assert sum(summary.ops.values()) == summary.nodes == len(result.sidecar.nodes)
    assert all(m.param_bytes <= summary.weight_bytes for m in summary.modules.values())
    classes = {m.path: m.cls for m in result.sidecar.modules}
    # A module's class comes from its nodes' tags: known for every module with nodes.
    assert all(classes[path] == m.cls for path, m in summary.modules.items() if m.nodes)
    assert Structure.from_json(json.loads(json.dumps(summary.to_json()))) == summary


def test_a_clean_export_is_summarized_from_its_sidecar(tmp_path: Path) -> None:
    tagged, clean = bert(tmp_path, "torchscript"), bert(tmp_path, "torchscript", clean=True)
    assert diff.diff(tagged, clean).identical
    (tmp_path / "base-torchscript-clean.hierarchy.json").unlink()
    with pytest.raises(UsageError, match="no module tags"):
        structure.of_file(tmp_path / "base-torchscript-clean.onnx")


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_one_more_layer_is_named_and_nothing_else(tmp_path: Path, exporter: str) -> None:
    found = diff.diff(bert(tmp_path, exporter), bert(tmp_path, exporter, num_hidden_layers=3))
    assert found.signature == ()
    assert [row.where for row in found.modules] == ["encoder.layer.2"]
    assert found.modules[0].what.startswith("new module: ")
    assert found.graph_changed


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_another_activation_changes_only_the_intermediate_modules_in_one_row(
        tmp_path: Path, exporter: str) -> None:
    found = diff.diff(bert(tmp_path, exporter), bert(tmp_path, exporter, hidden_act="relu"))
    assert [(r.where, r.count) for r in found.modules] == [
        ("encoder.layer.{0,1}.intermediate.intermediate_act_fn", 2)]
    assert found.modules[0].what.startswith("class GELUActivation -> ReLU; ")
    assert found.signature == () and not found.graph_changed


def test_another_attention_implementation_changes_the_attention_modules(tmp_path: Path
                                                                         ) -> None:
    eager = bert(tmp_path, "torchscript", attn_implementation="eager")
    found = diff.diff(eager, bert(tmp_path, "torchscript", attn_implementation="sdpa"))
    where = [row.where for row in found.modules]
    attention = [w for w in where if w != "(root)"]
    assert attention and all(w.endswith(".attention.self") for w in attention)
    # Besides the attention modules, only the root, which builds the attention mask.
    assert set(where) - set(attention) <= {"(root)"}
    assert found.signature == ()


def test_the_two_exporters_agree_on_modules_and_heavy_ops(tmp_path: Path) -> None:
    script, dynamo = bert(tmp_path, "torchscript"), bert(tmp_path, "dynamo")
    assert set(script.modules) == set(dynamo.modules)
    for path in script.modules:
        heavy = {op: n for op, n in script.modules[path].ops.items() if op in HEAVY}
        assert heavy == {op: n for op, n in dynamo.modules[path].ops.items() if op in HEAVY}
    found = diff.diff(script, dynamo)
    assert found.signature == ()  # both name the outputs after the model's output
    assert not any(row.what.startswith(("new", "removed")) for row in found.modules)


def test_the_same_export_twice_is_identical(tmp_path: Path) -> None:
    first = bert(tmp_path / "a", "torchscript")
    assert diff.diff(first, bert(tmp_path / "b", "torchscript")).identical


def test_a_twelve_layer_summary_stays_a_few_tens_of_kb(tmp_path: Path) -> None:
    summary = bert(tmp_path, "torchscript", num_hidden_layers=12)
    assert len(json.dumps(summary.to_json())) < 64_000
