"""Projection rules on hand-made graphs: no torch, no exporter."""

from __future__ import annotations

from modelexport.htp.project import (
    EXACT,
    INFERRED,
    UNATTRIBUTED,
    GraphNode,
    dynamo_resolver,
    project,
    statistics,
    torchscript_resolver,
)
from modelexport.htp.trace import Call, CallTree


def tree_of(*paths: str, builtin: tuple[str, ...] = (), twice: tuple[str, ...] = ()) -> CallTree:
    """A call tree where each path is called once (``twice``: two calls) by its prefix."""
    calls: list[Call] = []
    index: dict[str, int] = {}
    for path in ("", *paths, *twice):
        parent = path.rpartition(".")[0] if path else None
        while parent and parent not in index:
            parent = parent.rpartition(".")[0]
        calls.append(Call(path, index.get(parent) if parent is not None else None))
        index.setdefault(path, len(calls) - 1)
    classes = {path: path.rpartition(".")[2].title() or "Root" for path in ("", *paths)}
    return CallTree(calls, classes, frozenset(builtin))


RESNET = tree_of(
    "embedder", "embedder.embedder", "embedder.embedder.convolution",
    "encoder", "encoder.stages.0", "encoder.stages.0.layers.0",
    "encoder.stages.0.layers.0.layer", "encoder.stages.0.layers.0.layer.0",
    "encoder.stages.0.layers.0.layer.0.convolution",
)


def test_torchscript_scopes_resolve_relative_to_any_enclosing_module() -> None:
    module_of = torchscript_resolver(RESNET)
    assert module_of("/embedder/embedder/convolution/Conv") == "embedder.embedder.convolution"
    # ``layer.0`` is named relative to ``layers.0``, not to the Sequential ``layer``.
    assert (
        module_of("/encoder/stages.0/layers.0/layer/layer.0/convolution/Conv")
        == "encoder.stages.0.layers.0.layer.0.convolution"
    )
    assert module_of("/encoder/stages.0/layers.0/Add") == "encoder.stages.0.layers.0"
    assert module_of("/Cast") == ""


def test_torchscript_unknown_scopes_and_exporter_made_nodes_do_not_resolve() -> None:
    module_of = torchscript_resolver(RESNET)
    assert module_of("Identity_3") is None
    assert module_of("/encoder/stages.7/Add") is None


def test_torchscript_second_call_suffix_resolves_to_the_called_module() -> None:
    tree = tree_of("wte", "h.0", twice=("wte",))
    module_of = torchscript_resolver(tree)
    assert module_of("/wte_1/Gather") == "wte"
    assert module_of("/h.0_1/Add") is None  # h.0 was called once: no second scope


def test_dynamo_name_scopes_give_the_owning_module() -> None:
    tree = tree_of("encoder", "encoder.layer.0", "encoder.layer.0.attention")
    dynamo_module = dynamo_resolver(tree)
    scopes = "['', 'encoder', 'encoder.layer.0', 'encoder.layer.0.attention', 'linear_3']"
    assert dynamo_module(scopes) == "encoder.layer.0.attention"
    assert dynamo_module("['', 'add']") == ""
    assert dynamo_module("['', 'encoder', 'encoder.layer.0@1', 'view']") == "encoder.layer.0"
    assert dynamo_module("['', 'nowhere', 'view']") is None
    assert dynamo_module(None) is None


def resolve_as_is(module: str | None) -> str | None:
    return module


def node(name: str, inputs: tuple[str, ...], outputs: tuple[str, ...], module: str | None,
         op: str = "Op") -> GraphNode:
    return GraphNode(name, op, inputs, outputs, module)


def test_chains_of_exporter_made_nodes_take_their_consumer() -> None:
    tree = tree_of("a", "a.q")
    nodes = [
        node("Constant_0", (), ("c",), None, "Constant"),
        node("Identity_1", ("c",), ("i",), None, "Identity"),
        node("/a/q/MatMul", ("x", "i"), ("y",), "a.q", "MatMul"),
    ]
    tags = project(nodes, tree, resolve_as_is, {})
    assert [t.module for t in tags] == ["a.q", "a.q", "a.q"]
    assert [t.how for t in tags] == [INFERRED, INFERRED, EXACT]
    assert tags[0].reason == "consumers"


def test_shared_constant_goes_to_the_common_called_ancestor() -> None:
    # encoder.layer is a ModuleList, never called: the ancestor must be a called module.
    tree = tree_of("encoder", "encoder.layer.0", "encoder.layer.1")
    nodes = [
        node("Constant_0", (), ("c",), None),
        node("a", ("c",), ("y0",), "encoder.layer.0"),
        node("b", ("c",), ("y1",), "encoder.layer.1"),
    ]
    tag = project(nodes, tree, resolve_as_is, {})[0]
    assert tag == ("encoder", INFERRED, "common ancestor of consumers")


def test_sharing_between_unrelated_top_level_modules_is_unattributed_not_root() -> None:
    tree = tree_of("encoder", "pooler")
    nodes = [
        node("Constant_0", (), ("c",), None),
        node("a", ("c",), ("y0",), "encoder"),
        node("b", ("c",), ("y1",), "pooler"),
        node("Lonely", (), ("z",), None),
    ]
    tags = project(nodes, tree, resolve_as_is, {})
    assert tags[0] == (None, UNATTRIBUTED, "shared by unrelated modules")
    assert tags[3] == (None, UNATTRIBUTED, "no tagged neighbour")


def test_graph_outputs_without_consumers_take_their_producer() -> None:
    tree = tree_of("head")
    nodes = [node("/head/Gemm", ("x",), ("y",), "head"), node("Identity_9", ("y",), ("out",), None)]
    assert project(nodes, tree, resolve_as_is, {})[1] == ("head", INFERRED, "producers")


def test_fused_node_moves_to_the_sibling_leaf_whose_parameters_it_reads() -> None:
    # dynamo folds BatchNorm into Conv and keeps the BatchNorm scope.
    tree = tree_of("conv_layer", "conv_layer.convolution", "conv_layer.normalization",
                   builtin=("conv_layer.convolution", "conv_layer.normalization"))
    owner = {"conv_layer.convolution.weight": "conv_layer.convolution"}
    nodes = [node("Conv", ("x", "conv_layer.convolution.weight"), ("y",),
                  "conv_layer.normalization", "Conv")]
    assert project(nodes, tree, resolve_as_is, owner)[0] == ("conv_layer.convolution", EXACT, None)


def test_foreign_parameters_keep_the_tag_when_not_a_fusion() -> None:
    tree = tree_of("wte", "lm_head", "block", "block.dense", "block.norm",
                   builtin=("wte", "lm_head", "block.dense", "block.norm"))
    owner = {"wte.weight": "wte", "block.norm.bias": "block.norm"}
    nodes = [
        # tied weights: the LM head reads the embedding matrix, it is not a sibling leaf
        node("MatMul", ("h", "wte.weight"), ("logits",), "lm_head", "MatMul"),
        node("Gather", ("wte.weight", "ids"), ("e",), "wte", "Gather"),
        # dedup: dense's zero bias is read under norm's name, but norm has its own node
        node("Add", ("d", "block.norm.bias"), ("a",), "block.dense", "Add"),
        node("LayerNorm", ("a", "block.norm.bias"), ("n",), "block.norm", "LayerNormalization"),
    ]
    tags = project(nodes, tree, resolve_as_is, owner)
    assert [t.module for t in tags] == ["lm_head", "wte", "block.dense", "block.norm"]


def test_statistics_count_every_node_once() -> None:
    tree = tree_of("a", "b")
    nodes = [
        node("/a/X", (), ("x",), "a", "MatMul"),
        node("C", (), ("c",), None, "Constant"),
        node("/b/Y", ("x", "c"), ("y",), "b", "MatMul"),
        node("L", (), ("l",), None, "Constant"),
    ]
    stats = statistics(nodes, project(nodes, tree, resolve_as_is, {}), tree)
    counts = (stats.nodes, stats.exact, stats.inferred, stats.unattributed)
    assert counts == (4, 2, 1, 1)
    assert stats.inferred_reasons == {"consumers": 1}
    assert stats.unattributed_reasons == {"no tagged neighbour": 1}
    assert stats.op_types == {"Constant": 2, "MatMul": 2}
    assert stats.modules_with_nodes == 2
    assert stats.modules_called == 3


def test_class_chain_skips_modules_that_were_never_called() -> None:
    tree = tree_of("encoder", "encoder.layer.0", "encoder.layer.0.query")
    tree.classes["encoder.layer"] = "ModuleList"
    assert tree.class_chain("encoder.layer.0.query") == "Root/Encoder/0/Query"
    assert tree.parent_of("encoder.layer.0") == "encoder"


def test_what_only_reads_the_model_inputs_goes_to_its_first_user() -> None:
    # dynamo computes Shape(attention_mask) once for T5's encoder and decoder, where
    # TorchScript computes it in each.
    tree = tree_of("encoder", "decoder")
    nodes = [
        node("Shape_2", ("attention_mask",), ("size",), None),
        node("a", ("size",), ("y0",), "encoder"),
        node("b", ("size",), ("y1",), "decoder"),
    ]
    assert project(nodes, tree, resolve_as_is, {})[0] == ("encoder", INFERRED,
                                                         "first user of the model's inputs")
