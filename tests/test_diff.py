"""The structure diff on chosen summaries: folding, subtrees, signature, order. Pure."""

from __future__ import annotations

from modelexport import diff
from modelexport.onnxfile import TensorSig
from modelexport.structure import ModuleStructure, Structure

from harness import LINEAR, SDPA
from harness import toy_structure as model


def test_identical_structures_have_an_empty_diff() -> None:
    found = diff.diff(model(12), model(12))
    assert found.identical
    assert diff.shown_rows(found) == [diff.Row("graph", "unchanged: 86 nodes, 25.0 KB weights")]


def test_a_new_layer_is_one_row_at_its_top_with_everything_below_counted() -> None:
    found = diff.diff(model(2), model(3))
    assert [(r.where, r.what) for r in found.modules] == [
        ("encoder.layer.2", "new module: 7 nodes (MatMul 4, Add 2, Softmax 1), "
                            "2.0 KB parameters")]
    assert found.graph == "nodes 16 -> 23, weights 5.0 KB -> 7.0 KB"
    assert diff.diff(model(3), model(2)).modules[0].what.startswith("removed module:")


def test_layers_that_changed_alike_fold_into_one_row() -> None:
    found = diff.diff(model(12), model(12, attention=SDPA))
    assert [(r.where, r.what, r.count) for r in found.modules] == [
        ("encoder.layer.{0..11}.attention.self",
         "MatMul 2 -> 0, ScaledDotProductAttention 0 -> 1, Softmax 1 -> 0 (each)", 12)]


def test_folding_keeps_apart_what_changed_differently_and_lists_gaps() -> None:
    before = model(6)
    after = model(6)
    for i in (0, 2, 5):
        after.modules[f"encoder.layer.{i}.output.dense"] = ModuleStructure(
            "Linear", 2, {"Add": 1, "MatMul": 1}, 2000)
    after.modules["encoder.layer.3.output.dense"] = ModuleStructure("ReLU", 1, {"Relu": 1}, 0)
    rows = diff.diff(before, after).modules
    assert [(r.where, r.count) for r in rows] == [
        ("encoder.layer.{0,2,5}.output.dense", 3), ("encoder.layer.3.output.dense", 1)]
    assert rows[0].what == "parameters 1.0 KB -> 2.0 KB (each)"
    assert rows[1].what.startswith("class Linear -> ReLU; Add 1 -> 0, MatMul 1 -> 0, Relu 0 -> 1")


def test_signature_changes_are_named_one_per_line() -> None:
    extra = TensorSig("pooler_output", "float32", ("batch", 64))
    wider = TensorSig("last_hidden_state", "float32", ("batch", "sequence", 128))
    found = diff.diff(model(1), model(1, outputs=(wider, extra)))
    assert found.signature == (
        "output 'pooler_output' added (float32 [batch, 64])",
        "output 'last_hidden_state': float32 [batch, sequence, 64] -> "
        "float32 [batch, sequence, 128]")
    assert not found.identical


def test_order_is_deterministic_and_numeric() -> None:
    changes = [(f"layer.{i}.block.{j}", f"change {j}") for i in (10, 2, 1) for j in (3, 1)]
    rows = diff.fold(reversed(changes))
    assert [r.where for r in rows] == ["layer.{1,2,10}.block.1", "layer.{1,2,10}.block.3"]
    assert rows == diff.fold(changes)


def test_text_and_markdown_limit_rows_and_escape_cells() -> None:
    after = model(1, **{f"head|{i}": LINEAR for i in range(30)})
    found = diff.diff(model(1), after)
    text = diff.as_text(found, limit=5)
    lines = text.splitlines()
    assert len(lines) == 7 and lines[5].split() == ["...", "25", "more", "module", "changes"]
    assert lines[-1].startswith("graph")
    markdown = diff.as_markdown(found, limit=5)
    assert ("| `head\\|0` | `new module Linear: 2 nodes (Add 1, MatMul 1), 1.0 KB parameters` |"
            in markdown)


def test_json_round_trip_of_a_summary() -> None:
    summary = model(2)
    assert Structure.from_json(summary.to_json()) == summary
