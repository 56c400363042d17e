"""Splicing metadata into serialized models gives what protobuf itself would write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from modelexport.htp import wire

pytestmark = pytest.mark.export


def small_model() -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "w")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["y"], name="/lin/MatMul"),
            helper.make_node("Relu", ["y"], ["z"], name="/act/Relu"),
        ],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, [2, 4])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.graph.node[1].metadata_props.add(key="existing", value="kept")
    return model


def test_read_returns_nodes_and_header_without_the_graph() -> None:
    model = small_model()
    header, nodes = wire.read(model.SerializeToString())
    assert [n.name for n in nodes] == ["/lin/MatMul", "/act/Relu"]
    assert header.opset_import[0].version == 18
    assert [i.name for i in header.graph.input] == [i.name for i in model.graph.input]
    assert [o.name for o in header.graph.output] == ["z"]
    assert not header.graph.node and not header.graph.initializer


def test_spliced_model_equals_the_model_edited_in_memory() -> None:
    model = small_model()
    props = [{"modelexport.module": "lin"}, {}]
    spliced = b"".join(
        bytes(chunk)
        for chunk in wire.add_metadata(model.SerializeToString(), props, {"k": "v"})
    )
    expected = small_model()
    expected.graph.node[0].metadata_props.add(key="modelexport.module", value="lin")
    expected.metadata_props.add(key="k", value="v")
    got = onnx.ModelProto.FromString(spliced)
    assert got == expected
    onnx.checker.check_model(got, full_check=True)
    assert numpy_helper.to_array(got.graph.initializer[0]).tolist() == \
        np.arange(12).reshape(3, 4).tolist()


def test_weights_pass_through_as_views_not_copies() -> None:
    data = small_model().SerializeToString()
    chunks = wire.add_metadata(data, [{"a": "b"}, {"c": "d"}], {})
    views = [c for c in chunks if isinstance(c, memoryview) and c.obj is data]
    assert sum(len(v) for v in views) >= len(data) - 200  # all but the edited bytes


def test_tag_count_must_match_node_count() -> None:
    data = small_model().SerializeToString()
    with pytest.raises(ValueError, match="tags for 1 nodes"):
        wire.add_metadata(data, [{}], {})
    with pytest.raises(ValueError, match="graph has 2 nodes, got tags for 3"):
        wire.add_metadata(data, [{}, {}, {}], {})


def test_a_streamed_save_is_the_model_ir_save_writes(tmp_path: Path) -> None:
    import onnx_ir
    import torch
    import transformers

    config = transformers.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64)
    model = transformers.BertModel(config).eval()
    ids = torch.ones(2, 8, dtype=torch.long)
    program = torch.onnx.export(model, (), kwargs={"input_ids": ids}, dynamo=True, verbose=False)
    program.model.graph.node(0).metadata_props["modelexport.module"] = "embeddings"
    assert wire.save_streamed(program.model, tmp_path / "streamed.onnx")
    program.save(tmp_path / "saved.onnx", external_data=False)
    streamed = onnx.load(tmp_path / "streamed.onnx")
    saved = onnx.load(tmp_path / "saved.onnx")
    # ir.save also writes a value_info per weight, repeating its TensorProto's type and shape.
    weights = {tensor.name for tensor in saved.graph.initializer}
    kept = [info for info in saved.graph.value_info if info.name not in weights]
    del saved.graph.value_info[:]
    saved.graph.value_info.extend(kept)
    assert streamed == saved
    props = {prop.key: prop.value for prop in streamed.graph.node[0].metadata_props}
    assert props["modelexport.module"] == "embeddings"
    onnx.checker.check_model(streamed, full_check=True)
    # A weight it cannot stream (text) leaves the save to ir.save.
    vocabulary = onnx_ir.StringTensor([b"a", b"b"], shape=onnx_ir.Shape([2]))
    texts = onnx_ir.Value(name="vocab", const_value=vocabulary)
    program.model.graph.initializers["vocab"] = texts
    assert not wire.save_streamed(program.model, tmp_path / "text.onnx")
    assert not (tmp_path / "text.onnx").exists()
