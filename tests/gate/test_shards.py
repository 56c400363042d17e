"""Sharding a manifest over a CI matrix: balanced, deterministic, every model once."""

from __future__ import annotations

import random

import pytest

from modelexport.gate import shards


@pytest.mark.parametrize("seed", range(5))
def test_shards_are_balanced_and_cover_every_model_once(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"m{i}" for i in range(rng.randint(5, 40))]
    seconds = {n: rng.uniform(1, 100) for n in names if rng.random() < 0.8}
    count = rng.randint(2, 6)
    parts = shards.split(names, count, seconds)
    assert sorted(n for part in parts for n in part) == sorted(names)
    assert parts == shards.split(list(reversed(names)), count, seconds)  # deterministic
    typical = sorted(seconds.values())[len(seconds) // 2]
    loads = [sum(seconds.get(n, typical) for n in part) for part in parts]
    assert max(loads) - min(loads) <= max(seconds.values(), default=typical)


def test_more_shards_than_models_leaves_some_empty() -> None:
    assert shards.split(["a", "b"], 3, {}) == [["a"], ["b"], []]
