"""This run's medians in Bencher's and github-action-benchmark's formats. Pure, no torch;
the real check writing them is in tests/commands/test_check.py."""

from __future__ import annotations

from dataclasses import replace
from statistics import median

import pytest

from modelexport import schemas
from modelexport.gate.compare import Outcome, Verdict
from modelexport.gate.metric import Change
from modelexport.gate.results import Base
from modelexport.publish import benchmarks

from harness import measured, results_of

EXPORTS = [1.0, 1.2, 0.9, 1.1, 1.05, 0.95, 1.0, 1.3]  # 8: enough for a median's interval
RUNS_MS = [2.0 + i / 100 for i in range(40)]


def profile(runs: list[float]) -> dict:
    return {"settings": {"runs": len(runs), "warmup": 3, "threads": 1, "optimization": "all"},
            "latency_ms": runs, "attributed": 1.0, "modules": {"": [1.0, 1.0]}}


def test_bmf_gives_each_model_its_medians_in_nanoseconds_with_their_intervals() -> None:
    results = results_of({
        "bert": measured(EXPORTS, export_peak_bytes=[512_000_000, 520_000_000, 516_000_000],
                         inference=profile(RUNS_MS)),
        "tiny": measured([0.5, 0.6, 0.55]),  # too few exports for an interval
    })
    found = benchmarks.bmf(results)
    assert schemas.schema_errors(found, schemas.BMF) == []
    bert = found["bert"]
    assert bert["export-time"]["value"] == pytest.approx(median(EXPORTS) * 1e9)
    assert bert["export-time"]["lower_value"] <= bert["export-time"]["value"] \
        <= bert["export-time"]["upper_value"]
    # The latency the verdict judges unpaired: the means of 10 blocks of runs.
    blocks = [sum(RUNS_MS[i:i + 4]) / 4 for i in range(0, 40, 4)]
    assert bert["latency"]["value"] == pytest.approx(median(blocks) * 1e6)
    assert bert["export-memory"] == {"value": pytest.approx(516_000_000.0)}  # 3: no bounds
    assert found["tiny"]["export-time"] == {"value": pytest.approx(0.55e9)}
    assert "latency" not in found["tiny"]
    # Measured beside the base, the verdict judges every run: so does the file.
    paired = replace(results, base=Base("abc1234", "0" * 64, dict(results.models)))
    assert benchmarks.bmf(paired)["bert"]["latency"]["value"] == pytest.approx(
        median(RUNS_MS) * 1e6)


def test_benchmark_action_entries_carry_the_unit_range_and_verdict() -> None:
    results = results_of({"bert": measured(EXPORTS, inference=profile(RUNS_MS)),
                          "gone": measured([1.0])})
    verdict = Verdict("bert", Outcome.REGRESSED, ("inference +20.0 %",), changes=(
        Change("inference", "ms", 1.7, 2.2, 1.2, 0.001, "worse"),), timed=True)
    entries = benchmarks.benchmark_action(results, [verdict])
    assert schemas.schema_errors(entries, schemas.BENCHMARK_ACTION) == []
    by_name = {entry["name"]: entry for entry in entries}
    assert set(by_name) == {"bert / export time", "bert / inference", "gone / export time"}
    latency = by_name["bert / inference"]
    assert latency["unit"] == "ms" and latency["range"].startswith("± ")
    assert latency["extra"] == "n 10; regressed; +20.0 % p 0.001"
    assert by_name["bert / export time"]["extra"] == "n 8; regressed"
    assert by_name["gone / export time"] == {"name": "gone / export time", "unit": "s",
                                             "value": 1.0, "extra": "n 1"}


def test_the_vendored_schemas_refuse_what_the_tools_would() -> None:
    assert schemas.schema_errors({"m": {"latency": {"lower_value": 1.0}}}, schemas.BMF)
    assert schemas.schema_errors({"m": {"latency": {"value": "fast"}}}, schemas.BMF)
    assert schemas.schema_errors([{"name": "m", "value": 1.0}], schemas.BENCHMARK_ACTION)
    assert schemas.schema_errors({"name": "m"}, schemas.BENCHMARK_ACTION)
