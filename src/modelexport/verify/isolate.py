"""One module of an ONNX file run alone: its nodes as a graph of their own, fed the values
its inputs have in another run, so that what the module itself adds is measured rather than
estimated from its inputs' and outputs' gaps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelexport.errors import ModelExportError, describe
from modelexport.inference import session


class NotAlone(ModelExportError):
    """The module cannot run by itself (a value it needs has no value given)."""


def run_alone(model: Any, nodes: Sequence[int], feed: Mapping[str, Any],
              outputs: Sequence[str], optimization: str = "all") -> dict[str, Any]:
    """``outputs`` of the nodes at ``nodes`` (indices into ``model``'s graph, an
    ``onnx.ModelProto``) run in ONNX Runtime at ``optimization`` on ``feed``: every value
    they take from other nodes, by name. Initializers and the Constant nodes they read come
    along."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    graph = model.graph
    inside = [graph.node[i] for i in sorted(nodes)]
    produced = {value for node in inside for value in node.output}
    constants = {value: node for node in graph.node if node.op_type == "Constant"
                 for value in node.output}
    weights = {init.name: init for init in graph.initializer}
    needed: dict[str, None] = {}
    taken: list[Any] = []
    extra: list[Any] = []
    for node in inside:
        for value in node.input:
            if not value or value in produced or value in needed:
                continue
            needed[value] = None
            if value in weights:
                taken.append(weights[value])
            elif value in constants:
                extra.append(constants[value])
    given = [v for v in needed if v not in weights and v not in constants]
    missing = [v for v in given if v not in feed]
    if missing:
        raise NotAlone(f"no value for {missing[0]}")
    inputs = [onnx.helper.make_tensor_value_info(
        v, onnx.helper.np_dtype_to_tensor_dtype(np.asarray(feed[v]).dtype),
        np.asarray(feed[v]).shape) for v in given]
    alone = onnx.helper.make_graph([*extra, *inside], "alone", inputs,
                                   [onnx.ValueInfoProto(name=v) for v in outputs], taken)
    proto = onnx.helper.make_model(alone, opset_imports=model.opset_import,
                                   ir_version=model.ir_version)
    options = ort.SessionOptions()
    options.graph_optimization_level = session.level(optimization)
    options.log_severity_level = 3  # its warnings about what a module alone leaves unused
    try:
        runner = ort.InferenceSession(proto.SerializeToString(), options,
                                      providers=["CPUExecutionProvider"])
        got = runner.run(list(outputs), {v: np.asarray(feed[v]) for v in given})
    except Exception as exc:  # onnxruntime raises its own types
        raise NotAlone(describe(exc)) from exc
    return dict(zip(outputs, got, strict=True))
