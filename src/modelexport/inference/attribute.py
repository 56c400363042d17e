"""Which module each kernel ORT ran belongs to. Pure: no onnxruntime, no torch.

ORT's optimizations rename and fuse nodes, so a node of the optimized graph is traced back
through tensor names: a fused node still produces the output tensors of the subgraph it
replaced, and the nodes of that subgraph are those whose results no longer exist outside
it. A node standing for several modules goes where its heaviest original nodes are (a
Conv fused with the Relu of the module after it is the Conv's module's time; ``WEIGHT``), to
their lowest common ancestor where those lie in several modules, and says which other
modules it absorbed. One whose outputs are all new goes by the name ORT gave it (named
after an exported node or tensor), else where the nodes it feeds are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from modelexport import modulepath
from modelexport.onnxfile import Node


@dataclass(frozen=True)
class Placement:
    """Where one node of the optimized graph belongs."""

    module: str | None  # '' is the root; None: nothing to attribute it to
    members: tuple[str, ...]  # the exported nodes it computes
    how: str  # node | fused | neighbours | none
    op_type: str  # of the optimized node, without its domain, as ORT's profiler names it
    absorbed: tuple[str, ...] = ()  # fused: the other modules whose nodes it computes


NOWHERE = Placement(None, (), "none", "")  # a kernel the optimized graph does not name

# How much work an exported node's op does, by class: products and convolutions dwarf the
# normalizations, softmaxes and reductions, which outweigh an elementwise op. A fused kernel
# is the work of its heaviest members; ops not named weigh 1.
WEIGHT = {
    **dict.fromkeys(("Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "MatMul", "Gemm",
                     "MatMulInteger", "QLinearMatMul", "Einsum", "LSTM", "GRU", "RNN",
                     "Attention", "MultiHeadAttention", "FusedMatMul", "FusedConv",
                     "FusedGemm"), 3),
    **dict.fromkeys(("LayerNormalization", "BatchNormalization", "InstanceNormalization",
                     "GroupNormalization", "RMSNormalization", "Softmax", "LogSoftmax",
                     "ReduceMean", "ReduceSum", "ReduceMax", "ReduceL2", "TopK", "CumSum"), 2),
}


def attribute(exported: Sequence[Node], modules: dict[str, str | None],
              optimized: Sequence[Node]) -> dict[str, Placement]:
    """Each optimized node's place; ``modules`` maps exported node names to their tags."""
    producer = {tensor: i for i, node in enumerate(exported) for tensor in node.outputs if tensor}
    consumers: dict[str, list[int]] = defaultdict(list)
    for i, node in enumerate(exported):
        for tensor in node.inputs:
            consumers[tensor].append(i)
    alive = {t for node in optimized for t in (*node.inputs, *node.outputs) if t}
    by_name = {node.name: i for i, node in enumerate(exported)}
    claimed: set[int] = set()
    placed: dict[str, Placement] = {}
    for node in optimized:
        seeds = {producer[t] for t in node.outputs if t in producer} or _named_after(
            node.name, producer, by_name)
        members = _members(seeds - claimed, exported, producer, consumers, alive, claimed)
        claimed |= members
        placed[node.name] = _place(node, [exported[i] for i in sorted(members)], modules)
    _place_by_neighbours(optimized, placed)
    return placed


def _place(node: Node, members: list[Node], modules: dict[str, str | None]) -> Placement:
    """Where the work of ``members`` belongs: the module of the heaviest of them."""
    names = tuple(member.name for member in members)
    # A folded Constant computes nothing: whichever module made it says nothing of where
    # the kernel's work belongs.
    tagged = [(WEIGHT.get(member.op_type, 1), tag) for member in members
              if member.op_type != "Constant" and (tag := modules.get(member.name)) is not None]
    if not tagged:
        return Placement(None, names, "none", _op(node))
    heaviest = max(weight for weight, _ in tagged)
    where = modulepath.common([tag for weight, tag in tagged if weight == heaviest])
    absorbed = tuple(sorted({tag for _, tag in tagged} - {where}))
    return Placement(where, names, "node" if len(names) == 1 else "fused", _op(node), absorbed)


def _op(node: Node) -> str:
    return node.op_type.rpartition(".")[2]  # com.microsoft.nchwc.Conv: Conv


def _named_after(name: str, producer: dict[str, int], by_name: dict[str, int]) -> set[int]:
    """For a kernel whose outputs are all new tensors: the exported node ORT named it after.
    onnxruntime 1.32's NCHWc layout pass names a convolution after the original output
    tensor plus ``_nchwc`` (most convolutions of a ResNet), and its MatMul+Add fusion names
    the Gemm after the MatMul plus ``/MatMulAddFusion/``."""
    if name.endswith("_nchwc") and name.removesuffix("_nchwc") in producer:
        return {producer[name.removesuffix("_nchwc")]}
    stem = name.rstrip("/").rpartition("/")[0]
    return {by_name[stem]} if stem in by_name else set()


def _members(seeds: set[int], exported: Sequence[Node], producer: dict[str, int],
             consumers: dict[str, list[int]], alive: set[str], claimed: set[int]) -> set[int]:
    """The exported nodes a kernel stands for: ``seeds`` (the producers of its outputs), and,
    walking back, every producer whose results vanished from the optimized graph and were
    used by these members alone (a subgraph shared with other nodes is no one's to claim)."""
    members = set(seeds)
    grown = True
    while grown:
        grown = False
        for member in list(members):
            for tensor in exported[member].inputs:
                source = producer.get(tensor)
                if source is None or source in members or source in claimed or tensor in alive:
                    continue
                if all(user in members for out in exported[source].outputs
                       for user in consumers[out]):
                    members.add(source)
                    grown = True
    return members


def _place_by_neighbours(optimized: Sequence[Node], placed: dict[str, Placement]) -> None:
    """Nodes ORT made up (the Gemm and reshapes of a MatMul+Add fusion, layout reorders)
    go where the nodes they feed are: their work serves those (the Gemm that computes
    ``key`` is fed by the hidden states of the layer before). Only where nothing they feed
    is placed, the nodes that feed them decide. A chain of such nodes settles in a few
    passes."""
    producers = {t: node.name for node in optimized for t in node.outputs if t}
    users: dict[str, list[str]] = defaultdict(list)
    for node in optimized:
        for tensor in node.inputs:
            users[tensor].append(node.name)
    for downstream in (True, False):
        for _ in range(4):
            for node in optimized:
                if placed[node.name].module is not None:
                    continue
                near = ([user for t in node.outputs for user in users[t]] if downstream
                        else [producers[t] for t in node.inputs if t in producers])
                known = [tag for tag in (placed[name].module for name in near) if tag is not None]
                if known:
                    placed[node.name] = Placement(modulepath.common(known), (), "neighbours",
                                                  _op(node))
