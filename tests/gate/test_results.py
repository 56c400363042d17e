"""Results and baseline files: versioned, validated, written atomically. No torch."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from modelexport.errors import UsageError
from modelexport.gate import manifest, results
from modelexport.gate.records import Measured
from modelexport.gate.results import Base, Results

from harness import measured, results_of, shard_results, toy_structure


def test_results_writes_are_atomic_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    loaded = manifest.Manifest(tmp_path / "m.yaml", (), "0" * 64)
    document = Results.new(loaded)
    results.write(path, document)
    first = path.stat().st_ino
    results.write(path, document)  # a whole new file renamed over the old one
    assert path.stat().st_ino != first
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


def test_a_version_1_baseline_still_reads_its_structure_unknown(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    current = results_of({"bert": measured([1.0, 1.1], structure=toy_structure(1).to_json())},
                         kind="baseline")
    old = current.to_json()
    old.update({"$schema": "https://modelexport.dev/schemas/results/1.json", "schema_version": 1})
    del old["models"]["bert"]["structure"]
    path.write_text(json.dumps(old))
    loaded = results.load(path, kind="baseline")
    record = loaded.models["bert"]
    assert isinstance(record, Measured) and record.structure is None
    results.write(path, current)  # written back as the current version
    assert json.loads(path.read_text())["schema_version"] == Results.SCHEMA_VERSION == 7
    assert results.load(path) == current


def test_an_inference_profile_is_kept_in_the_results(tmp_path: Path) -> None:
    profiled = measured([1.0, 1.1], inference={
        "settings": {"runs": 2, "warmup": 1, "threads": 1, "optimization": "all"},
        "latency_ms": [4.0, 4.2], "attributed": 0.99,
        "modules": {"": [0.1, 4.0], "encoder": [3.9, 3.9]}})
    path = tmp_path / "results.json"
    results.write(path, results_of({"bert": profiled, "plain": measured([1.0])}))
    loaded = results.load(path).models
    assert loaded["bert"] == profiled and loaded["plain"].inference is None
    assert profiled.inference is not None and profiled.inference.latency_ms == (4.0, 4.2)


def test_a_paired_run_keeps_its_base_and_merges_it_and_a_baseline_drops_it(tmp_path: Path
                                                                           ) -> None:
    base = Base("abc1234", "b" * 64, {}, ("dropped",))
    shards = []
    for index, name in ((1, "a"), (2, "b")):
        loaded = results.load(shard_results(tmp_path, index, [], ["a", "b"]))
        document = replace(loaded, base=base).with_model(name, measured([1.0]),
                                                         measured([0.9]))
        path = tmp_path / f"paired-{index}.json"
        results.write(path, document)
        assert results.load(path) == document
        shards.append((path, document))
    merged = results.merge(shards)
    assert merged.base is not None and merged.base.label == "abc1234"
    assert set(merged.base.models) == {"a", "b"} and merged.base.unmatched == ("dropped",)
    assert merged.as_baseline(None).base is None
    other = replace(shards[1][1], base=replace(base, label="fff0000"))
    with pytest.raises(UsageError, match="against another base"):
        results.merge([shards[0], (tmp_path / "other.json", other)])
