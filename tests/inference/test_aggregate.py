"""Per-module times of a typical run from runs built by hand. Pure."""

from __future__ import annotations

import pytest

from modelexport.inference import aggregate
from modelexport.inference.attribute import Placement
from modelexport.inference.events import Runs
from modelexport.inference.records import Profile, Settings


def test_self_times_add_up_to_the_total_and_a_disturbed_run_is_dropped() -> None:
    placed = {"k0": Placement("layer.0.dense", ("mm0",), "node", "MatMul"),
              "k1": Placement("layer.1", ("out",), "node", "Add"),
              "k2": Placement("", ("mask",), "node", "Cast")}
    usual = {"k0": (1000.0, 1), "k1": (2000.0, 1), "k2": (100.0, 1), "lost": (50.0, 1)}
    kernels = [usual] * 7 + [{**usual, "k0": (90_000.0, 1)}]  # a disturbed run
    runs = Runs((4000.0,) * 8, tuple(kernels))
    found = aggregate.aggregate("m.onnx", Settings(8, 0, None, "all"), runs, placed,
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
    assert Profile.from_json(found.to_json()) == found
