"""Verdicts on synthetic results: every verdict, every gate. No torch, no exports."""

from __future__ import annotations

import datetime
from dataclasses import replace

import pytest

from modelexport.gate import compare
from modelexport.gate.compare import Policy
from modelexport.gate.latency import Latency, ModuleDelta, module_deltas
from modelexport.gate.manifest import (
    AllowRegression,
    InferencePolicy,
    StructurePolicy,
    Thresholds,
)
from modelexport.gate.records import Failed
from modelexport.gate.results import Base
from modelexport.onnxfile import TensorSig
from modelexport.sidecar import Parity, Validation

from harness import HIDDEN, SDPA, results_of, toy_structure
from harness import measured as record

TODAY = datetime.date(2026, 11, 26)
STEADY = [1.00, 1.02, 0.99, 1.01, 1.03]


def verdict(current, baseline, policy=None, comparable=True) -> compare.Verdict:
    return compare.compare_model("m", current, baseline, policy or Policy(), TODAY, comparable)


def test_known_regression() -> None:
    v = verdict(record([1.21, 1.19, 1.25, 1.22, 1.20]), record(STEADY))
    assert v.outcome == "regressed"
    assert v.reasons[0].startswith("export time +19.8 %")
    time = v.change("export time")
    assert time is not None and time.p_value == pytest.approx(1 / 252)


def test_noisy_but_unchanged() -> None:
    v = verdict(record([1.02, 1.25, 0.97, 1.12, 1.08]), record([1.00, 1.30, 0.95, 1.10, 1.05]))
    assert v.outcome == "unchanged"


def test_slower_but_not_significant_is_unchanged() -> None:
    # +15 % median, but the samples interleave: noise, not a regression.
    v = verdict(record([0.9, 1.15, 1.4, 1.2, 1.3]), record([1.0, 1.35, 0.95, 1.1, 1.45]))
    assert v.outcome == "unchanged"


def test_too_few_samples_need_separate_ranges() -> None:
    assert verdict(record([1.3, 1.4, 1.35]), record([1.0, 1.1, 1.05])).outcome == "regressed"
    assert verdict(record([1.3, 1.04, 1.35]), record([1.0, 1.1, 1.05])).outcome == "unchanged"


def test_floor_ignores_tiny_absolute_slowdowns() -> None:
    fast = [0.010, 0.0102, 0.0099, 0.0101, 0.0103]
    slow = [0.013, 0.0131, 0.0132, 0.0133, 0.0134]
    assert verdict(record(slow), record(fast)).outcome == "unchanged"
    no_floor = Policy(Thresholds(floor=0.0))
    assert verdict(record(slow), record(fast), no_floor).outcome == "regressed"


def test_improvement() -> None:
    assert verdict(record([0.8, 0.81, 0.79, 0.8, 0.82]), record(STEADY)).outcome == "improved"


def test_new_missing_failed() -> None:
    assert verdict(record(STEADY), None).outcome == "new"
    assert verdict(None, record(STEADY)).outcome == "missing"
    failed = verdict(Failed("timed out after 5 s", 5.0), record(STEADY))
    assert (failed.outcome, failed.reasons) == ("failed", ("timed out after 5 s",))


def test_health_gates_fail_the_model() -> None:
    parity = Validation(True, Parity(outputs=1, max_abs_diff=0.3, tolerance=1e-4,
                                     passed=False))
    v = verdict(record(STEADY, validation=parity.to_json(), schema_valid=False),
                record(STEADY))
    assert v.outcome == "failed"
    assert v.reasons == ("sidecar does not validate against its schema",
                         "onnxruntime differs from PyTorch by 0.3")


def test_tag_node_and_size_growth_regress() -> None:
    v = verdict(record(STEADY, unattributed=3, nodes=110, onnx_bytes=1100), record(STEADY))
    assert v.outcome == "regressed"
    assert v.reasons == ("unattributed nodes 0 -> 3", "nodes 100 -> 110",
                         "ONNX size 1.0 KB -> 1.1 KB")
    assert verdict(record(STEADY, nodes=104), record(STEADY)).outcome == "unchanged"


def test_accepted_until_its_date_then_regressed_again() -> None:
    slow = record([1.21, 1.19, 1.25, 1.22, 1.20])
    ok = Policy(allow=AllowRegression("new attention kernel", datetime.date(2026, 12, 31)))
    v = verdict(slow, record(STEADY), ok)
    assert (v.outcome, v.accepted) == ("accepted", "new attention kernel")
    expired = Policy(allow=AllowRegression("old", datetime.date(2026, 11, 1)))
    assert verdict(slow, record(STEADY), expired).outcome == "regressed"


def test_other_environment_is_not_comparable() -> None:
    v = verdict(record([1.21, 1.19, 1.25, 1.22, 1.20]), record(STEADY), comparable=False)
    assert v.outcome == "not-comparable"


def test_compare_covers_both_sides_and_fails_only_on_regressions_and_failures() -> None:
    results = results_of({"a": record(STEADY), "b": record([1.3, 1.31, 1.29, 1.32, 1.3])})
    baseline = results_of({"b": record(STEADY), "c": record(STEADY)})
    verdicts = compare.compare(results, baseline, {}, TODAY, True)
    assert [(v.name, v.outcome) for v in verdicts] == [
        ("a", "new"), ("b", "regressed"), ("c", "missing")]
    assert compare.failed(verdicts)
    assert not compare.failed(verdicts[:1] + verdicts[2:])


EXTRA = TensorSig("pooler_output", "float32", ("batch", 64))


def test_a_signature_change_regresses_names_itself_and_can_be_accepted() -> None:
    before = record(STEADY, structure=toy_structure(2).to_json())
    after = record(STEADY, structure=toy_structure(2, outputs=(HIDDEN, EXTRA)).to_json())
    v = verdict(after, before)
    assert v.outcome == "regressed"
    assert v.reasons == ("signature: output 'pooler_output' added (float32 [batch, 64])",)
    accepted = Policy(allow=AllowRegression("a new output", datetime.date(2026, 12, 31)))
    assert verdict(after, before, accepted).outcome == "accepted"
    shown = Policy(structure=StructurePolicy(signature="report"))
    v = verdict(after, before, shown)
    assert v.outcome == "unchanged" and v.structure and not v.structure.identical


def test_graph_changes_are_reported_and_fail_only_where_the_manifest_asks() -> None:
    before = record(STEADY, structure=toy_structure(2).to_json())
    after = record(STEADY, structure=toy_structure(2, attention=SDPA).to_json())
    v = verdict(after, before)
    assert v.outcome == "unchanged" and v.structure is not None
    assert [r.where for r in v.structure.modules] == ["encoder.layer.{0,1}.attention.self"]
    strict = Policy(structure=StructurePolicy(graph="fail"))
    v = verdict(after, before, strict)
    assert v.outcome == "regressed" and v.reasons[0].startswith("graph: 1 module change(s)")


def test_the_structure_gates_across_machines_where_timings_cannot() -> None:
    before = record(STEADY, structure=toy_structure(2).to_json())
    grown = record(STEADY, structure=toy_structure(2, outputs=(HIDDEN, EXTRA)).to_json())
    assert verdict(grown, before, comparable=False).outcome == "regressed"
    same = verdict(record(STEADY, structure=toy_structure(2).to_json()), before,
                   comparable=False)
    assert (same.outcome, same.timed, same.compared) == ("not-comparable", False, True)


def test_a_baseline_without_structure_leaves_it_unknown_not_failed() -> None:
    v = verdict(record(STEADY, structure=toy_structure(2).to_json()), record(STEADY))
    assert (v.outcome, v.structure, v.compared) == ("unchanged", None, True)
    v = verdict(record(STEADY), record(STEADY), comparable=False)
    assert (v.outcome, v.compared) == ("not-comparable", False)


def latency(samples: list[float], **modules: tuple[float, float]) -> dict:
    """A model's inference profile as results store it: run latencies (ms), module times."""
    return {"settings": {"runs": len(samples), "warmup": 3, "threads": 1, "optimization": "all"},
            "latency_ms": samples, "attributed": 0.99,
            "modules": {path.replace("__", "."): list(times) for path, times in modules.items()}}


BASE_MS = [10.0, 10.1, 9.9, 10.2, 10.0, 9.8, 10.1, 10.0]
LAYERS = {"": (0.2, 10.0), "encoder__layer__0__intermediate": (2.0, 2.0),
          "encoder__layer__1__intermediate": (2.0, 2.0), "encoder__layer__0__attention": (3.0, 3.0),
          "encoder__layer__1__attention": (2.8, 2.8)}
INFERENCE = Policy(inference=InferencePolicy())


def test_slower_inference_regresses_and_names_the_modules_that_moved() -> None:
    slower = {**LAYERS, "encoder__layer__0__intermediate": (3.5, 3.5),
              "encoder__layer__1__intermediate": (3.4, 3.4)}
    v = verdict(record(STEADY, inference=latency([x * 1.3 for x in BASE_MS], **slower)),
                record(STEADY, inference=latency(BASE_MS, **LAYERS)), INFERENCE)
    assert v.outcome == "regressed"
    assert v.reasons == ("inference +30.0 % (10.000 ms -> 13.000 ms)",)
    # Both layers' intermediate modules fold into one row, and it leads.
    assert v.moved[0] == ModuleDelta("encoder.layer.{0,1}.intermediate", 4.0, 6.9, 2)
    assert v.inference is not None and v.inference.direction == "worse"


def test_one_layer_that_moved_alone_is_named_not_folded_into_its_siblings() -> None:
    layers = {f"model__layers__{i}__mlp": (1.0 + 0.01 * i, 1.0 + 0.01 * i) for i in range(4)}
    wider = {**layers, "model__layers__2__mlp": (2.0, 2.0),
             "model__layers__0__mlp": (1.01, 1.01)}  # noise on another layer
    rows = module_deltas(Latency.from_json(latency(BASE_MS, **layers)),
                         Latency.from_json(latency(BASE_MS, **wider)))
    assert rows[0] == ModuleDelta("model.layers.2.mlp", 1.02, 2.0)
    assert rows[1].where == "model.layers.{0,1,3}.mlp" and rows[1].count == 3


def test_a_decoder_gates_its_first_token_beside_its_per_token_latency() -> None:
    # A decoder's inference is one decode step; its prefill is kept as first_token.
    slower_prefill = record(STEADY, inference=latency(BASE_MS, **LAYERS),
                            first_token=latency([x * 1.5 for x in BASE_MS], **LAYERS))
    before = record(STEADY, inference=latency(BASE_MS, **LAYERS),
                    first_token=latency(BASE_MS, **LAYERS))
    v = verdict(slower_prefill, before, INFERENCE)
    assert v.outcome == "regressed"
    assert v.reasons == ("first token +50.0 % (10.000 ms -> 15.000 ms)",)
    assert v.inference is not None and v.inference.direction == "same"
    metrics = {m["name"]: m for m in v.to_json()["metrics"]}
    assert metrics["first token"]["ratio"] == pytest.approx(1.5)
    assert metrics["first token"]["direction"] == "worse"
    assert verdict(before, before, INFERENCE).outcome == "unchanged"
    encoder = record(STEADY, inference=latency(BASE_MS, **LAYERS))
    names = [m["name"] for m in verdict(encoder, encoder, INFERENCE).to_json()["metrics"]]
    assert names == ["export time", "inference"]


def test_a_machine_slowed_between_runs_regresses_though_most_runs_are_not() -> None:
    # A CPU-bound process on the same core: a 1.2 ms run mostly fits between its time
    # slices, every third one waits out a 3.6 ms slice. The median run does not move; the
    # machine is twice as slow.
    steady = [1.2 + 0.01 * (i % 3) for i in range(50)]
    hogged = [x + (3.6 if i % 3 == 2 else 0.0) for i, x in enumerate(steady)]
    assert sorted(hogged)[25] == sorted(steady)[25]
    v = verdict(record(STEADY, inference=latency(hogged)),
                record(STEADY, inference=latency(steady)), INFERENCE)
    assert v.outcome == "regressed" and v.reasons[0].startswith("inference +")
    assert v.inference is not None and v.inference.ratio > 1.9


def test_inference_within_noise_or_under_the_floor_is_unchanged() -> None:
    same = verdict(record(STEADY, inference=latency([x * 1.02 for x in BASE_MS], **LAYERS)),
                   record(STEADY, inference=latency(BASE_MS, **LAYERS)), INFERENCE)
    assert same.outcome == "unchanged" and same.moved == ()
    tiny = [0.050, 0.052, 0.049, 0.050, 0.053, 0.050, 0.051, 0.050]
    half_again = [x * 1.5 for x in tiny]
    floored = verdict(record(STEADY, inference=latency(half_again)),
                      record(STEADY, inference=latency(tiny)), INFERENCE)
    assert floored.outcome == "unchanged"  # +50 %, but 0.025 ms is under the 0.1 ms floor
    fine = Policy(inference=InferencePolicy(floor_ms=0.01))
    assert verdict(record(STEADY, inference=latency(half_again)),
                   record(STEADY, inference=latency(tiny)), fine).outcome == "regressed"


def test_inference_is_compared_only_alike_and_where_the_manifest_asks() -> None:
    slower = latency([x * 1.5 for x in BASE_MS])
    base = record(STEADY, inference=latency(BASE_MS))
    assert verdict(record(STEADY, inference=slower), base).outcome == "unchanged"  # not asked
    other = {**slower, "settings": {**slower["settings"], "threads": 4}}
    v = verdict(record(STEADY, inference=other), base, INFERENCE)
    assert v.outcome == "unchanged" and v.inference is None  # other settings
    v = verdict(record(STEADY, inference=slower), base, INFERENCE, comparable=False)
    assert v.outcome == "not-comparable" and v.inference is None
    faster = {**LAYERS, "encoder__layer__0__attention": (1.0, 1.0)}
    v = verdict(record(STEADY, inference=latency([x / 1.5 for x in BASE_MS], **faster)), base,
                INFERENCE)
    assert v.outcome == "improved" and v.moved


# Measured beside the pull request's base: sample i of each side one after the other.
LOAD = [1.0, 1.0, 1.6, 1.6, 1.0, 1.0, 1.5, 1.5]  # a load that came and went, on both sides


def paired_run(head: dict[str, object], base: dict[str, object], unmatched: tuple[str, ...] = ()
               ) -> list[compare.Verdict]:
    document = replace(results_of(head), base=Base("abc1234", "0" * 64, dict(base), unmatched))
    return compare.compare(document, results_of({}, "baseline"), {}, TODAY, comparable=False)


def test_paired_a_drift_on_both_sides_passes_and_a_constant_five_percent_regresses() -> None:
    (same,) = paired_run({"m": record([x * 1.002 for x in LOAD])}, {"m": record(LOAD)})
    assert same.outcome == "unchanged" and same.timed  # judged although "not comparable"
    policy = Policy(Thresholds(time=0.03, floor=0.0))
    document = replace(results_of({"m": record([x * 1.05 for x in LOAD])}),
                       base=Base("abc1234", "0" * 64, {"m": record(LOAD)}))
    (slower,) = compare.compare(document, None, {"m": policy}, TODAY, comparable=True)
    assert slower.outcome == "regressed"
    assert slower.reasons[0].startswith("export time +5.0 % (95 %: +5.0..+5.0 %;")
    time = slower.change("export time")
    assert time is not None and time.paired
    # The same samples against a stored baseline: the load hides the 5 %.
    assert verdict(record([x * 1.05 for x in LOAD]), record(LOAD), policy).outcome == \
        "unchanged"


def test_paired_a_failed_base_fails_the_model_a_lone_side_is_new_or_missing() -> None:
    verdicts = {v.name: v for v in paired_run(
        {"m": record(STEADY), "added": record(STEADY)},
        {"m": Failed("ValueError: no such layer")}, unmatched=("dropped",))}
    assert verdicts["m"].outcome == "failed"
    assert verdicts["m"].reasons == ("base: ValueError: no such layer",)
    assert verdicts["added"].outcome == "new"
    assert verdicts["added"].reasons == ("not in the base's manifest",)
    assert verdicts["dropped"].outcome == "missing"
    assert verdicts["dropped"].reasons == ("in the base's manifest, not in the head's",)


def test_the_exports_peak_memory_is_gated_where_both_sides_measured_it() -> None:
    mb = 1_000_000
    steady = [600 * mb, 604 * mb, 598 * mb, 601 * mb, 603 * mb]
    before = record(STEADY, export_peak_bytes=steady)
    grown = record(STEADY, export_peak_bytes=[int(b * 1.3) for b in steady])
    v = verdict(grown, before)
    assert v.outcome == "regressed"
    assert v.reasons == ("export memory +30.0 % (601.0 MB -> 781.3 MB)",)
    # Within the spread, or above the threshold by less than the floor in MB: no verdict.
    assert verdict(record(STEADY, export_peak_bytes=[b + 2 * mb for b in steady]),
                   before).outcome == "unchanged"
    small = record(STEADY, export_peak_bytes=[50 * mb + i for i in range(5)])
    bigger = record(STEADY, export_peak_bytes=[65 * mb + i for i in range(5)])  # +30 %, 15 MB
    assert verdict(bigger, small).outcome == "unchanged"
    floorless = Policy(Thresholds(memory_floor_mb=0))
    assert verdict(bigger, small, floorless).outcome == "regressed"
    # A baseline from before memory was measured (results version 6): not compared.
    names = [c.name for c in verdict(grown, record(STEADY)).changes]
    assert names == ["export time"]


def test_inference_memory_is_gated_where_asked_and_names_the_modules_that_grew() -> None:
    def profiled(peak_mb: float, intermediate_mb: float) -> dict:
        found = latency(BASE_MS, **LAYERS)
        found["arena_peak_bytes"] = int(peak_mb * 1e6)
        found["activation_bytes"] = {
            "encoder.layer.0.intermediate": int(intermediate_mb * 1e6),
            "encoder.layer.1.intermediate": int(intermediate_mb * 1e6),
            "encoder.layer.0.attention": 3_000_000, "encoder.layer.1.attention": 3_000_000}
        return found

    before = record(STEADY, inference=profiled(40.0, 2.0))
    wider = record(STEADY, inference=profiled(52.0, 8.0))
    gated = Policy(inference=InferencePolicy(memory=True))
    v = verdict(wider, before, gated)
    assert v.outcome == "regressed"
    assert v.reasons == ("inference memory +30.0 % (40.0 MB -> 52.0 MB)",)
    assert v.grown[0] == ModuleDelta("encoder.layer.{0,1}.intermediate", 4.0, 16.0, 2)
    assert v.to_json()["grown"][0]["current_mb"] == 16.0
    # Not asked for: shown nowhere, not gated.
    assert verdict(wider, before, INFERENCE).outcome == "unchanged"
    # Under the floor (1 MB by default) or from before version 7: no verdict.
    assert verdict(record(STEADY, inference=profiled(40.5, 2.0)), before, gated
                   ).outcome == "unchanged"
    assert verdict(wider, record(STEADY, inference=latency(BASE_MS, **LAYERS)), gated
                   ).change("inference memory") is None
