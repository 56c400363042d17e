"""Sharding a manifest over a CI matrix and merging the shards back: exactly once."""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from modelexport import manifest, results
from modelexport.errors import UsageError


@pytest.mark.parametrize("seed", range(5))
def test_shards_are_balanced_and_cover_every_model_once(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"m{i}" for i in range(rng.randint(5, 40))]
    seconds = {n: rng.uniform(1, 100) for n in names if rng.random() < 0.8}
    count = rng.randint(2, 6)
    parts = results.shards(names, count, seconds)
    assert sorted(n for part in parts for n in part) == sorted(names)
    assert parts == results.shards(list(reversed(names)), count, seconds)  # deterministic
    typical = sorted(seconds.values())[len(seconds) // 2]
    loads = [sum(seconds.get(n, typical) for n in part) for part in parts]
    assert max(loads) - min(loads) <= max(seconds.values(), default=typical)


def test_more_shards_than_models_leaves_some_empty() -> None:
    assert results.shards(["a", "b"], 3, {}) == [["a"], ["b"], []]


def shard_document(tmp_path: Path, index: int, names: list[str], selected: list[str]) -> Path:
    loaded = manifest.Manifest(tmp_path / "models.yaml", (), "a" * 64)
    document = results.new(loaded)
    document["shard"] = {"index": index, "count": 2, "selected": selected}
    for name in names:
        document["models"][name] = {"status": "failed", "error": "x", "wall_s": 1.0}
    path = tmp_path / f"results-{index}.json"
    results.write(path, document)
    return path


def test_merge_cli_exactly_once(tmp_path: Path) -> None:
    selected = ["a", "b", "c"]
    one = shard_document(tmp_path, 1, ["a", "c"], selected)
    two = shard_document(tmp_path, 2, ["b"], selected)
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "modelexport.cli", "merge", str(one), str(two),
                           "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    merged = results.load(out, kind="results")
    assert list(merged["models"]) == ["a", "b", "c"] and "shard" not in merged

    proc = subprocess.run([sys.executable, "-m", "modelexport.cli", "merge", str(one), str(one),
                           "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "a: in both" in proc.stderr


def test_merge_refuses_missing_models_and_foreign_manifests(tmp_path: Path) -> None:
    one = shard_document(tmp_path, 1, ["a"], ["a", "b"])
    loaded_one = (one, results.load(one))
    with pytest.raises(UsageError, match="missing from every shard: b"):
        results.merge([loaded_one])
    other = copy.deepcopy(results.load(one))
    other["manifest"]["sha256"] = "b" * 64
    other["models"] = {"b": other["models"]["a"]}
    with pytest.raises(UsageError, match="from another manifest"):
        results.merge([loaded_one, (tmp_path / "other.json", other)])
    assert json.loads(one.read_text())["shard"]["selected"] == ["a", "b"]
