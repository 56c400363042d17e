"""Kernels of ORT's optimized graph placed on modules: graphs built by hand. Pure: no
onnxruntime, no torch. The real thing runs in test_session.py."""

from __future__ import annotations

from modelexport.inference import attribute
from modelexport.inference.attribute import Placement
from modelexport.onnxfile import Node


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


def test_a_fused_kernel_goes_to_the_module_of_its_heaviest_node_and_names_what_it_absorbed(
) -> None:
    optimized = [
        node("mask", "Cast", ("m",), ("mask_out",)),
        node("fused", "FusedMatMulGelu", ("x", "w0"), ("gelu0_out",)),  # mm0 + add0 + gelu0
        node("reorder", "ReorderInput", ("gelu0_out",), ("new_t",)),  # made up by ORT
        node("mm1", "MatMul", ("new_t", "mask_out"), ("mm1_out",)),
        node("out", "Identity", ("mm1_out", "mask_out"), ("y",)),
    ]
    placed = attribute.attribute(EXPORTED, MODULES, optimized)
    # The MatMul is the work; the Gelu of the next module rides along. The folded Constant
    # (tagged embeddings) is a member but says nothing of the place.
    assert placed["fused"] == Placement("layer.0.dense", ("c", "mm0", "add0", "gelu0"), "fused",
                                       "FusedMatMulGelu", ("layer.0.act",))
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
    placed = attribute.attribute(EXPORTED, MODULES, optimized)
    assert placed["mm1"].members == ("mm1",)
    assert placed["out"].module == "layer.1"


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
    placed = attribute.attribute(exported, modules, optimized)
    assert placed["/act/Relu_output_0_nchwc"] == Placement(
        "stem.conv", ("/conv/Conv", "/act/Relu"), "fused", "Conv", ("stem.act",))
    assert placed["/fc/MatMul/MatMulAddFusion/"] == Placement("head.fc", ("/fc/MatMul",), "node",
                                                              "Gemm")
    assert placed["/fc/Add_reshape"].module == "head.fc"
    assert placed["reorder_out"] == Placement("head.fc", (), "neighbours", "ReorderOutput")


def test_a_kernel_fusing_equally_heavy_nodes_of_several_modules_goes_to_their_ancestor() -> None:
    # An attention fusion: the query, key and value products weigh alike; the softmax of
    # the parent module weighs less. Both layer norms' elementwise work weighs less still.
    exported = [
        node("q", "MatMul", ("x", "wq"), ("q_out",)),
        node("k", "MatMul", ("x", "wk"), ("k_out",)),
        node("v", "MatMul", ("x", "wv"), ("v_out",)),
        node("scores", "MatMul", ("q_out", "k_out"), ("s_out",)),
        node("softmax", "Softmax", ("s_out",), ("p_out",)),
        node("context", "MatMul", ("p_out", "v_out"), ("y",)),
        node("add", "Add", ("y", "x"), ("r",)),
        node("mean", "ReduceMean", ("r",), ("norm",)),
    ]
    modules = {"q": "attn.query", "k": "attn.key", "v": "attn.value", "scores": "attn",
               "softmax": "attn", "context": "attn", "add": "output", "mean": "output.norm"}
    optimized = [node("fused", "Attention", ("x", "wqkv"), ("y",)),
                 node("skip_norm", "SkipLayerNormalization", ("y", "x"), ("norm",))]
    placed = attribute.attribute(exported, modules, optimized)
    assert placed["fused"].module == "attn"
    assert placed["fused"].absorbed == ("attn.key", "attn.query", "attn.value")
    # The normalization outweighs the residual Add it swallowed.
    assert placed["skip_norm"] == Placement("output.norm", ("add", "mean"), "fused",
                                            "SkipLayerNormalization", ("output",))
