"""A profile as Model Explorer node data, read back by Model Explorer's own reader. Pure."""

from __future__ import annotations

from modelexport.inference import overlay
from modelexport.inference.records import NodeTime, Profile, Settings
from modelexport.onnxfile import Node

EXPORTED = [Node("mask", "Cast", ("m",), ("mask_out",)), Node("c", "Constant", (), ("c_out",)),
            Node("mm0", "MatMul", ("x", "w0"), ("mm0_out",)),
            Node("add0", "Add", ("mm0_out", "c_out"), ("add0_out",)),
            Node("gelu0", "Gelu", ("add0_out",), ("y",))]


def test_the_overlay_puts_a_kernels_time_on_its_heavy_nodes() -> None:
    found = Profile(
        "m.onnx", Settings(1, 0, None, "all"), (1.0,), (1.0,), 1.0, (),
        (NodeTime("fused", "FusedMatMulGelu", "layer.0", "fused",
                  ("c", "mm0", "add0", "gelu0"), 0.8, 1),
         NodeTime("mask", "Cast", "", "node", ("mask",), 0.2, 1)))
    data = overlay.overlay(found, EXPORTED, "main_graph")
    results = data["main_graph"]["results"]
    assert results == {"mm0": {"value": 0.8}, "mask": {"value": 0.2}}
    # Model Explorer's own reader takes it.
    from model_explorer.node_data_builder import GraphNodeData, NodeDataResult

    graph = GraphNodeData(**{**data["main_graph"], "results": {
        key: NodeDataResult(**value) for key, value in results.items()}})
    assert graph.results["mm0"].value == 0.8
