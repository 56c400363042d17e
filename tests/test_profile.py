"""Attribution and aggregation of a profile, on graphs and events built by hand: no
onnxruntime, no torch. The real thing runs in test_inference.py."""

from __future__ import annotations

import json

import pytest

from modelexport import profile
from modelexport.onnxfile import Node
from modelexport.profile import Placement, Runs, Settings


def node(name: str, op: str, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> Node:
    return Node(name, op, inputs, outputs)


# x -> mask (root's own code, used by both layers) ; layer.0: MatMul, Add, Gelu ; layer.1: MatMul
EXPORTED = [
    node("mask", "Cast", ("m",), ("mask_out",)),
    node("c", "Constant", (), ("c_out",)),
    node("mm0", "MatMul", ("x", "w0"), ("mm0_out",)),
    node("add0", "Add", ("mm0_out", "c_out"), ("add0_out",)),
    node("gelu0", "Gelu", ("add0_out",), ("gelu0_out",)),
    node("mm1", "MatMul", ("gelu0_out", "mask_out"), ("mm1_out",)),
    node("out", "Identity", ("mm1_out", "mask_out"), ("y",)),
]
MODULES = {"mask": "", "c": "embeddings", "mm0": "layer.0.dense", "add0": "layer.0.dense",
           "gelu0": "layer.0.act", "mm1": "layer.1.dense", "out": "layer.1"}


def test_a_fused_kernel_goes_to_the_common_module_of_what_it_computes() -> None:
    optimized = [
        node("mask", "Cast", ("m",), ("mask_out",)),
        node("fused", "FusedMatMulGelu", ("x", "w0"), ("gelu0_out",)),  # mm0 + add0 + gelu0
        node("reorder", "ReorderInput", ("gelu0_out",), ("new_t",)),  # made up by ORT
        node("mm1", "MatMul", ("new_t", "mask_out"), ("mm1_out",)),
        node("out", "Identity", ("mm1_out", "mask_out"), ("y",)),
    ]
    placed = profile.attribute(EXPORTED, MODULES, optimized)
    # The folded Constant (tagged embeddings) is a member but says nothing of the place.
    assert placed["fused"] == Placement("layer.0", ("c", "mm0", "add0", "gelu0"), "fused",
                                       "FusedMatMulGelu")
    assert placed["mask"] == Placement("", ("mask",), "node", "Cast")
    assert placed["mm1"] == Placement("layer.1.dense", ("mm1",), "node", "MatMul")
    # It feeds layer.1.dense (mm1): its work serves that, not the fused kernel before it.
    assert placed["reorder"] == Placement("layer.1.dense", (), "neighbours", "ReorderInput")


def test_a_subgraph_shared_with_other_kernels_is_no_single_kernels() -> None:
    # mask_out vanished (fused away into both users), yet two kernels use it: neither may
    # claim the root's mask computation, or the root would swallow a layer.
    optimized = [
        node("mm1", "MatMulMasked", ("gelu0_out", "m"), ("mm1_out",)),
        node("out", "IdentityMasked", ("mm1_out", "m"), ("y",)),
    ]
    placed = profile.attribute(EXPORTED, MODULES, optimized)
    assert placed["mm1"].members == ("mm1",)
    assert placed["out"].module == "layer.1"


@pytest.mark.parametrize(("paths", "common"), [
    (["encoder.layer.1.attention", "encoder.layer.10.output"], "encoder.layer"),
    (["a.b", "a.b"], "a.b"), (["a", ""], ""), (["x.y", "z"], ""),
])
def test_common_module_compares_whole_names(paths: list[str], common: str) -> None:
    assert profile.common_module(paths) == common


def events(runs: list[dict[str, float]], gap: float = 1000.0) -> list[dict]:
    """A Chrome trace as ORT writes it: a model_run event per run, kernels inside."""
    trace: list[dict] = [{"cat": "Session", "name": "session_initialization", "ts": 0, "dur": 5}]
    ts = 10.0
    for kernels in runs:
        start = ts
        for name, dur in kernels.items():
            trace.append({"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur})
            trace.append({"cat": "Node", "name": f"{name}_fence_before", "ts": ts, "dur": 0})
            ts += dur
        trace.append({"cat": "Session", "name": "model_run", "ts": start, "dur": ts - start + 1})
        ts += gap
    return trace


def test_runs_drop_the_warm_up_and_count_each_kernel_in_its_run() -> None:
    trace = events([{"a": 900.0}, {"a": 100.0, "b": 50.0}, {"a": 110.0}])
    runs = profile.runs_of(trace, 1, 2)
    assert runs.kernels == ({"a": (100.0, 1), "b": (50.0, 1)}, {"a": (110.0, 1)})
    assert runs.latency_us == (151.0, 111.0)
    # ORT's profiler stops recording at a million events (a loop can make that many in a
    # few runs): the last run is missing, and averaging the rest would hide it.
    with pytest.raises(ValueError, match="it holds 2 of the 3 runs"):
        profile.runs_of(trace[:-1], 1, 2)


# As onnxruntime writes it: one event a line, ``args`` last.
ORT_TRACE = "\n".join([
    "[",
    '{"cat" : "Session","pid" :7,"tid" :7,"dur" :5,"ts" :1,"ph" : "X",'
    '"name" :"model_loading_uri","args" : {}},',
    '{"cat" : "Node","pid" :7,"tid" :7,"dur" :61,"ts" :20,"ph" : "X",'
    '"name" :"a\\"b,\\"args\\" :{_kernel_time","args" : {"op_name" : "Relu",'
    '"thread_scheduling_stats" : {"main_thread": {"core": -1}}}},',
    '{"cat" : "Session","pid" :7,"tid" :7,"dur" :87,"ts" :10,"ph" : "X",'
    '"name" :"model_run","args" : {}}',
    "]",
])


def test_the_trace_is_read_without_its_statistics() -> None:
    # A name holding the marker (its quotes escaped, as ORT escapes them) does not cut the
    # event short.
    events = profile.trace_events(ORT_TRACE)
    assert [e["name"] for e in events] == ["model_loading_uri", 'a"b,"args" :{_kernel_time',
                                           "model_run"]
    assert events[1] == {"cat": "Node", "pid": 7, "tid": 7, "dur": 61, "ts": 20, "ph": "X",
                         "name": 'a"b,"args" :{_kernel_time'}
    # Laid out otherwise (one line, args first): parsed whole.
    whole = json.dumps([{"args": {"x": 1}, "name": "model_run", "ts": 1, "dur": 2}])
    assert profile.trace_events(whole) == json.loads(whole)
    for broken in ('[{"name": "model_run", "ts": 1', "[1, 2]", ""):
        with pytest.raises(ValueError):
            profile.trace_events(broken)


def test_self_times_add_up_to_the_total_and_a_disturbed_run_is_dropped() -> None:
    placed = {"k0": Placement("layer.0.dense", ("mm0",), "node", "MatMul"),
              "k1": Placement("layer.1", ("out",), "node", "Add"),
              "k2": Placement("", ("mask",), "node", "Cast")}
    usual = {"k0": (1000.0, 1), "k1": (2000.0, 1), "k2": (100.0, 1), "lost": (50.0, 1)}
    kernels = [usual] * 7 + [{**usual, "k0": (90_000.0, 1)}]  # a disturbed run
    runs = Runs((4000.0,) * 8, tuple(kernels))
    found = profile.aggregate("m.onnx", Settings(8, 0, None, "all"), runs, placed,
                              {"": "Model", "layer.0.dense": "Linear"})
    by_path = {m.path: m for m in found.modules}
    assert [m.path for m in found.modules] == ["", "layer", "layer.0", "layer.0.dense",
                                               "layer.1"]
    assert by_path["layer.0.dense"].self_ms == pytest.approx(1.0)  # the 90 ms run dropped
    assert sum(m.self_ms for m in found.modules) == pytest.approx(found.total_ms)
    assert found.total_ms == pytest.approx(3.15)
    # The root's own kernel and the one with no place ("lost") are not attributed.
    assert found.attributed == pytest.approx(3.0 / 3.15)
    assert by_path[""].self_ms == pytest.approx(0.15)
    assert by_path["layer"].inclusive_ms == pytest.approx(3.0)
    assert by_path["layer.0.dense"].ops == (("MatMul", pytest.approx(1.0)),)
    assert found.nodes[0].name == "k1"
    assert profile.Profile.from_json(found.to_json()) == found


def test_the_overlay_puts_a_kernels_time_on_its_heavy_nodes() -> None:
    found = profile.Profile(
        "m.onnx", Settings(1, 0, None, "all"), (1.0,), (1.0,), 1.0, (),
        (profile.NodeTime("fused", "FusedMatMulGelu", "layer.0", "fused",
                          ("c", "mm0", "add0", "gelu0"), 0.8, 1),
         profile.NodeTime("mask", "Cast", "", "node", ("mask",), 0.2, 1)))
    overlay = profile.overlay(found, EXPORTED, "main_graph")
    results = overlay["main_graph"]["results"]
    assert results == {"mm0": {"value": 0.8}, "mask": {"value": 0.2}}
    # Model Explorer's own reader takes it.
    from model_explorer.node_data_builder import GraphNodeData, NodeDataResult

    graph = GraphNodeData(**{**overlay["main_graph"], "results": {
        key: NodeDataResult(**value) for key, value in results.items()}})
    assert graph.results["mm0"].value == 0.8


def test_kernels_ort_renamed_are_found_by_the_names_it_gives_them() -> None:
    exported = [
        node("/conv/Conv", "Conv", ("x", "w"), ("/conv/Conv_output_0",)),
        node("/act/Relu", "Relu", ("/conv/Conv_output_0",), ("/act/Relu_output_0",)),
        node("/fc/MatMul", "MatMul", ("/act/Relu_output_0", "v"), ("/fc/MatMul_output_0",)),
        node("/fc/Add", "Add", ("/fc/MatMul_output_0", "b"), ("y",)),
    ]
    modules = {"/conv/Conv": "stem.conv", "/act/Relu": "stem.act", "/fc/MatMul": "head.fc",
               "/fc/Add": "head.fc"}
    optimized = [
        # NCHWc: a Conv with the Relu fused, named after the Relu's output, outputs all new.
        node("/act/Relu_output_0_nchwc", "com.microsoft.nchwc.Conv", ("x", "w_nchwc"),
             ("reorder_token_0",)),
        node("reorder_out", "ReorderOutput", ("reorder_token_0",), ("flat",)),
        # MatMul+Add as a Gemm between two reshapes, named after the MatMul.
        node("/fc/MatMul/MatMulAddFusion/", "Gemm", ("flat", "v", "b"), ("gemm_out",)),
        node("/fc/Add_reshape", "Reshape", ("gemm_out",), ("y",)),
    ]
    placed = profile.attribute(exported, modules, optimized)
    assert placed["/act/Relu_output_0_nchwc"] == Placement("stem", ("/conv/Conv", "/act/Relu"),
                                                           "fused", "Conv")
    assert placed["/fc/MatMul/MatMulAddFusion/"] == Placement("head.fc", ("/fc/MatMul",), "node",
                                                              "Gemm")
    assert placed["/fc/Add_reshape"].module == "head.fc"
    assert placed["reorder_out"] == Placement("head.fc", (), "neighbours", "ReorderOutput")
