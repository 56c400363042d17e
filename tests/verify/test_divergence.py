"""Gaps, the first divergence and their rendering, from controlled arrays: pure."""

from __future__ import annotations

import json
import math

import numpy as np

from modelexport.publish import divergence as rendered
from modelexport.verify.boundaries import Boundary
from modelexport.verify.divergence import Gap, Verification, compare

# embed -> block (attn inside it, then mlp) -> head
EDGES = [
    Boundary("embed", 0, ("ids",), ("e",)),
    Boundary("block", 3, ("e",), ("b",)),
    Boundary("block.attn", 1, ("e",), ("a",)),
    Boundary("block.mlp", 3, ("a",), ("b",)),
    Boundary("head", 4, ("b",), ("y",)),
]
CLASSES = {"embed": "Embedding", "block": "Block", "block.attn": "Attention",
           "block.mlp": "MLP", "head": "Linear"}
REFERENCE = {name: np.linspace(-1, 1, 8) for name in ("e", "a", "b", "y")}


def run(**shifted: float) -> Verification:
    """The reference with ``name=delta`` added to the named values."""
    candidate = {name: value + shifted.get(name, 0.0) for name, value in REFERENCE.items()}
    return compare(EDGES, CLASSES, ["ids"], ["y"], REFERENCE, candidate, 1e-3,
                   ("fp32", "fp16"))


def test_a_gap_is_absolute_relative_and_a_direction() -> None:
    gap = Gap.of(np.array([2.0, -4.0]), np.array([2.0, -3.0]))
    assert gap.max_abs == 1.0 and gap.max_rel == 0.25
    assert 0.99 < gap.cosine < 1.0
    assert Gap.of(np.ones(3), np.ones(3)) == Gap(0.0, 0.0, 1.0)


def test_a_nan_where_the_reference_has_one_is_no_error_and_elsewhere_is_infinite() -> None:
    assert Gap.of(np.array([np.nan, 1.0]), np.array([np.nan, 1.0])).max_abs == 0.0
    assert math.isinf(Gap.of(np.array([0.0, 1.0]), np.array([np.nan, 1.0])).max_abs)
    assert math.isinf(Gap.of(np.zeros(2), np.zeros(3)).max_abs)  # a shape mismatch


def test_the_first_divergence_is_the_innermost_module_that_adds_the_error() -> None:
    found = run(a=0.01, b=0.01, y=0.01)  # made in attn, carried through mlp and head
    assert found.first is not None and found.first.module == "block.attn"
    mlp = next(m for m in found.modules if m.module == "block.mlp")
    assert mlp.inputs.max_abs > found.tolerance and mlp.added < 1e-12  # carried, not made
    assert not found.within


def test_an_error_that_grows_module_by_module_names_no_single_module() -> None:
    found = run(e=0.0006, a=0.0009, b=0.0012, y=0.0015)
    assert found.first is None
    assert "no module adds that much alone" in rendered.verdict(found)
    assert found.ranked[0].added > 0


def test_within_tolerance_passes_and_says_so() -> None:
    found = run(y=1e-5)
    assert found.within and found.first is None
    assert rendered.verdict(found).startswith("within tolerance")


def test_a_value_the_candidate_lacks_is_said_and_left_out() -> None:
    candidate = {name: value for name, value in REFERENCE.items() if name != "a"}
    found = compare(EDGES, CLASSES, ["ids"], ["y"], REFERENCE, candidate, 1e-3)
    attn = next(m for m in found.modules if m.module == "block.attn")
    assert attn.compared == 0 and attn.missing == ("a",)
    assert "1 module output(s) compared without them: `a`;" in rendered.missing(found)
    mlp = next(m for m in found.modules if m.module == "block.mlp")
    assert mlp.blind == 1  # takes a, which one run lacks


def test_the_reports_name_the_first_divergence_and_hold_no_infinity() -> None:
    found = compare(EDGES, CLASSES, ["ids"], ["y"], REFERENCE, {**REFERENCE, "a": np.zeros(3),
                                                         "b": np.zeros(3), "y": np.zeros(3)},
                    1e-3)
    text = rendered.as_text(found)
    assert "first divergence: `block.attn`" in text and "mismatch" in text
    assert "| `block.attn` | `Attention` |" in rendered.as_markdown(found)
    document = json.loads(json.dumps(found.to_json(), allow_nan=False))
    assert document["first_divergence"] == "block.attn"
    assert document["modules"][2]["outputs"]["max_abs"] is None


def test_a_measured_addition_replaces_the_estimate_and_is_shown_as_such() -> None:
    candidate = {name: value + {"a": 0.01, "b": 0.01}.get(name, 0.0)
                 for name, value in REFERENCE.items()}
    # mlp's estimate is 0 (its input carried it all); run alone it added 0.02.
    found = compare(EDGES, CLASSES, ["ids"], ["y"], REFERENCE, candidate, 1e-3,
                    measured={"block.mlp": 0.02})
    mlp = next(m for m in found.modules if m.module == "block.mlp")
    assert mlp.added == 0.02 and mlp.to_json()["added_measured"]
    assert found.first is not None and found.first.module == "block.attn"
    rows = {line.split()[0]: line for line in rendered.as_text(found).splitlines()[2:-2]}
    assert rows["mlp"].endswith(" 2.0e-02") and rows["attn"].endswith("~1.0e-02")


def test_value_names_from_the_file_reach_markdown_only_as_code() -> None:
    edges = [Boundary("m", 0, ("x",), ("<img src=x>|y",))]
    found = compare(edges, {}, ["x"], [], {"<img src=x>|y": np.ones(2)}, {}, 1e-3)
    assert "`<img src=x>\\|y`" in rendered.as_markdown(found)
    assert "<img src=x>|y" not in rendered.as_markdown(found)
