"""Which values cross a module's edge, on hand-made graphs: pure, no onnx."""

from __future__ import annotations

from modelexport.onnxfile import Node, Skeleton, TensorSig
from modelexport.verify.boundaries import Boundary, boundaries


def graph(nodes: list[tuple[str, list[str], list[str]]], outputs: list[str]) -> Skeleton:
    return Skeleton(
        ir_version=10, opsets={"": 20},
        inputs=(TensorSig("x", "float32", (2,)),),
        outputs=tuple(TensorSig(name, "float32", (2,)) for name in outputs),
        nodes=tuple(Node(name, "Constant" if name == "k" else "Op", tuple(i), tuple(o))
                    for name, i, o in nodes),
        initializers={"w": 8}, props={})


# x -> a.b (MatMul with w) -> h1 -> a (Relu) -> h2 -> c (Add h2 and h1) -> y
CHAIN = graph([("mm", ["x", "w"], ["h1"]), ("relu", ["h1"], ["h2"]),
               ("add", ["h2", "h1"], ["y"])], ["y"])
OWNERS = ["a.b", "a", "c"]


def test_a_module_gives_what_is_used_outside_it_and_takes_what_comes_from_outside() -> None:
    found = {b.module: b for b in boundaries(CHAIN, OWNERS)}
    # h1 leaves a.b for a's relu and for c; the weight is the file's, on both sides alike.
    assert found["a.b"] == Boundary("a.b", 0, ("x",), ("h1",))
    # h1 is inside a: only what c uses leaves it.
    assert found["a"] == Boundary("a", 1, ("x",), ("h1", "h2"))
    assert found["c"] == Boundary("c", 2, ("h2", "h1"), ("y",))


def test_tree_order_with_siblings_in_the_order_they_finish() -> None:
    assert [b.module for b in boundaries(CHAIN, OWNERS)] == ["a", "a.b", "c"]
    late = graph([("in", ["x"], ["h"]), ("mid", ["h"], ["k"]), ("out", ["k"], ["y"])], ["y"])
    # z's first node comes first, but its results are complete after q's.
    assert [b.module for b in boundaries(late, ["z", "q", "z"])] == ["q", "z"]


def test_constants_cross_no_edge() -> None:
    found = boundaries(graph([("k", [], ["c"]), ("mm", ["x", "c"], ["y"])], ["y"]), ["a", "b"])
    assert [(b.module, b.inputs, b.outputs) for b in found] == [("a", (), ()),
                                                                ("b", ("x",), ("y",))]


def test_depth_folds_deeper_modules_into_their_ancestor() -> None:
    found = boundaries(CHAIN, OWNERS, depth=1)
    assert [b.module for b in found] == ["a", "c"]
    assert found[0].outputs == ("h1", "h2")


def test_unattributed_nodes_belong_to_the_root_which_has_no_row() -> None:
    found = boundaries(CHAIN, ["a", None, "c"])
    assert [b.module for b in found] == ["a", "c"]
    assert found[0].outputs == ("h1",)  # used by the root's relu and by c
