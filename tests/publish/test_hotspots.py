"""A profile rendered for people."""

from __future__ import annotations

from modelexport.inference.records import ModuleTime, Profile, Settings
from modelexport.publish import hotspots


def _profile(run_ms: float, kernels_ms: float) -> Profile:
    root = ModuleTime("", "Net", 0.0, kernels_ms, None, None, 0, ())
    return Profile("m.onnx", Settings(5, 1, None, "all"), (run_ms,) * 5, (kernels_ms,) * 5,
                   1.0, (root,), ())


def test_a_profile_whose_kernels_sum_above_its_run_says_why() -> None:
    assert "overlapped in time" in hotspots.headline(_profile(1.6, 3.4))
    assert "overlapped" not in hotspots.headline(_profile(4.0, 3.4))
