"""``modelexport merge``: shard results back into one, each model exactly once."""

from __future__ import annotations

from pathlib import Path

from modelexport.gate import results

from harness import run_cli, shard_results


def test_merge_cli_exactly_once(tmp_path: Path) -> None:
    selected = ["a", "b", "c"]
    one = shard_results(tmp_path, 1, ["a", "c"], selected)
    two = shard_results(tmp_path, 2, ["b"], selected)
    out = tmp_path / "results.json"
    proc = run_cli("merge", str(one), str(two), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    merged = results.load(out, kind="results")
    assert list(merged.models) == ["a", "b", "c"] and merged.shard is None

    proc = run_cli("merge", str(one), str(one), "-o", str(out))
    assert proc.returncode == 2
    assert "a: in both" in proc.stderr
