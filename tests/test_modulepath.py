"""Module paths: ancestors, the common ancestor, folding repeated layers. Pure."""

from __future__ import annotations

import pytest

from modelexport import modulepath


@pytest.mark.parametrize(("paths", "common"), [
    (["encoder.layer.1.attention", "encoder.layer.10.output"], "encoder.layer"),
    (["a.b", "a.b"], "a.b"), (["a", ""], ""), (["x.y", "z"], ""), ([], ""),
])
def test_the_common_ancestor_compares_whole_names(paths: list[str], common: str) -> None:
    assert modulepath.common(paths) == common


def test_ancestors_run_up_to_the_root_and_the_lineage_down_from_it() -> None:
    assert modulepath.ancestors("a.b.c") == ["a.b.c", "a.b", "a", ""]
    assert modulepath.lineage("a.b") == ["", "a", "a.b"]
    assert modulepath.ancestors("") == [""]
    assert (modulepath.depth(""), modulepath.depth("a.b")) == (0, 2)
    assert (modulepath.leaf("a.b"), modulepath.leaf("")) == ("b", "")


def test_repeated_layers_share_a_pattern_and_fold_into_one_name() -> None:
    assert modulepath.pattern("encoder.layer.11.output") == "encoder.layer.#.output"
    paths = [f"encoder.layer.{i}.output" for i in (0, 1, 2, 3)]
    assert modulepath.folded_name(paths) == "encoder.layer.{0..3}.output"
    assert modulepath.folded_name(["h.0.mlp", "h.2.mlp"]) == "h.{0,2}.mlp"
    assert modulepath.folded_name([""]) == "(root)"
    assert sorted(["l.10", "l.2", "l.1"], key=modulepath.natural_order) == ["l.1", "l.2", "l.10"]
    # A tree's order: the root first, each module right after its parent, even where the
    # root's children are numbered (an nn.Sequential).
    assert sorted(["1.a", "10", "", "2", "1"], key=modulepath.natural_order) == [
        "", "1", "1.a", "2", "10"]
