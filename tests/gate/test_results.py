"""Results and baseline files: versioned, validated, written atomically. No torch."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from modelexport.errors import UsageError
from modelexport.gate import manifest, results
from modelexport.gate.results import Results

from harness import shard_results


def test_results_writes_are_atomic_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    loaded = manifest.Manifest(tmp_path / "m.yaml", (), "0" * 64)
    document = Results.new(loaded)
    results.write(path, document)
    with pytest.raises(ValueError, match="refusing to write"):
        results.write(path, replace(document, kind="nonsense"))  # type: ignore[arg-type]
    assert results.load(path) == document  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
    (tmp_path / "foreign.json").write_text('{"benchmarks": []}')
    with pytest.raises(UsageError, match="not a modelexport results or baseline file"):
        results.load(tmp_path / "foreign.json")
    (tmp_path / "corrupt.json").write_text('{"$schema": "')
    with pytest.raises(UsageError, match="corrupt"):
        results.load(tmp_path / "corrupt.json")


def test_merge_refuses_missing_models_and_foreign_manifests(tmp_path: Path) -> None:
    one = shard_results(tmp_path, 1, ["a"], ["a", "b"])
    loaded_one = (one, results.load(one))
    with pytest.raises(UsageError, match="missing from every shard: b"):
        results.merge([loaded_one])
    other = replace(results.load(one), manifest_sha256="b" * 64,
                    models={"b": results.load(one).models["a"]})
    with pytest.raises(UsageError, match="from another manifest"):
        results.merge([loaded_one, (tmp_path / "other.json", other)])
    assert json.loads(one.read_text())["shard"]["selected"] == ["a", "b"]
