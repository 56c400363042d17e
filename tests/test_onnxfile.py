"""Reading an ONNX file's skeleton by hand gives what the onnx package reads, weights aside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from modelexport import onnxfile
from modelexport.errors import UsageError

from harness import ALL_MODELS, EXPORTERS

pytestmark = pytest.mark.export


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", ALL_MODELS)
def test_skeleton_matches_the_onnx_package(exports, name: str, exporter: str) -> None:
    path = exports.get(name, exporter).onnx_path
    skeleton = onnxfile.read(path)
    model = onnx.load(path)
    assert skeleton.ir_version == model.ir_version
    assert skeleton.opsets == {o.domain: o.version for o in model.opset_import}
    assert skeleton.props == {p.key: p.value for p in model.metadata_props}
    initializers = {i.name: numpy_helper.to_array(i).nbytes for i in model.graph.initializer}
    assert skeleton.initializers == initializers
    ends = ((skeleton.inputs, model.graph.input), (skeleton.outputs, model.graph.output))
    for sigs, infos in ends:
        fed = [i for i in infos if i.name not in initializers]
        assert [(s.name, s.shape) for s in sigs] == [
            (i.name, tuple(d.dim_value if d.HasField("dim_value") else d.dim_param
                           for d in i.type.tensor_type.shape.dim)) for i in fed]
        assert [s.dtype for s in sigs] == [
            helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type).name for i in fed]
    assert [(n.name, n.op_type, n.inputs, n.outputs, n.props) for n in skeleton.nodes] == [
        (n.name, n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}",
         tuple(n.input), tuple(n.output), {p.key: p.value for p in n.metadata_props})
        for n in model.graph.node]


def test_external_weights_and_symbolic_dims_are_read_without_loading_them(tmp_path: Path
                                                                          ) -> None:
    weight = numpy_helper.from_array(np.ones((300, 200), "float32"), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 300])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 200])],
        [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    path = tmp_path / "m.onnx"
    onnx.save(model, path, save_as_external_data=True, location="m.onnx.data",
              size_threshold=0)
    skeleton = onnxfile.read(path)
    assert skeleton.initializers == {"w": 300 * 200 * 4}
    assert skeleton.inputs[0].shape == ("batch", 300)
    assert skeleton.outputs[0].dtype == "float32"


@pytest.mark.parametrize("content", [b"", b"\xff" * 100, b'{"models": {}}', b"\x0a\x05ab"])
def test_what_is_not_onnx_is_a_usage_error_naming_the_file(tmp_path: Path, content: bytes
                                                          ) -> None:
    path = tmp_path / "x.onnx"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=r"x\.onnx: not an ONNX model"):
        onnxfile.read(path)
