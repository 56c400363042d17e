"""How good is the gate: false alarms on an unchanged machine, detections on a slowed one.

    python bench/gate_quality.py                      # examples/manifest.yaml, 10 + 10 runs
    python bench/gate_quality.py --runs 10 --core 0 --json bench/gate-quality.json
    python bench/gate_quality.py --inference          # the inference-latency verdict instead

1. A baseline is made by the same code: `check --update-baseline`, pinned to one core.
2. `check` runs --runs times against it, same core, nothing else running: every run with a
   `regressed` verdict is a false alarm (goal: 0 of 10).
3. A CPU-bound process is pinned to the same core (taskset) and `check` runs --runs times
   again: the machine is slower by far more than 20 %; every run with a `regressed` verdict
   is a detection (goal: 10 of 10, at least 9).

With --inference the manifest's models are profiled in onnxruntime (the defaults: 50 runs, one
thread)
and only the inference verdict counts (export time is not gated: a floor of an hour, one
repeat). A fourth step makes a real change: bert-tiny's feed-forward 4x wider
(intermediate_size 512 -> 2048), checked --runs // 3 times against the same baseline: a
detection names the model and the module that moved most.

The inference verdict compares the means of blocks of runs; each inference check also says
which models comparing single runs would have flagged, on the same results.

A benchmark, not a test: it reports, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).parent.parent


def check(manifest: Path, baseline: Path, workdir: Path, core: int, *extra: str) -> list[dict]:
    report = workdir / "report.json"
    report.unlink(missing_ok=True)  # a run that fails must not leave the last one's report
    proc = subprocess.run(
        ["taskset", "-c", str(core), sys.executable, "-m", "modelexport", "check",
         str(manifest), "--baseline", str(baseline), "--results", str(workdir / "r.json"),
         "--report-json", str(report), *extra],
        check=False, capture_output=True, text=True,
    )
    if not report.is_file():
        sys.exit(f"check wrote no report (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(report.read_text())["models"]


def inference_manifest(manifest: Path, workdir: Path, wider: bool = False) -> Path:
    """The manifest with inference profiled and export time not gated; ``wider``: bert-tiny's
    feed-forward 4x wider."""
    text = manifest.read_text().replace(
        "  repeats: 5\n", "  repeats: 1\n  inference: {}\n"
    ).replace("floor: 0.05}", "floor: 3600}")
    if wider:
        text = text.replace("intermediate_size: 512}", "intermediate_size: 2048}")
    path = workdir / ("wider.yaml" if wider else "inference.yaml")
    path.write_text(text)
    return path


def by_single_runs(workdir: Path, baseline: Path) -> dict[str, float]:
    """Per model flagged by the gate's test and thresholds, the ratio of the median single run,
    were single runs compared instead of blocks of runs: what the block means change."""
    from modelexport import stats

    now = json.loads((workdir / "r.json").read_text())["models"]
    was = json.loads(baseline.read_text())["models"]
    flagged = {}
    for name, record in now.items():
        current, before = record["inference"]["latency_ms"], was[name]["inference"]["latency_ms"]
        found = stats.greater(current, before, 0.01)
        if found.ratio > 1.10 and found.significant and found.delta > 0.1:
            flagged[name] = found.ratio
    return flagged


def regressed(verdict: dict, inference: bool) -> bool:
    return verdict["verdict"] == "regressed" and (
        not inference or any(r.startswith("inference") for r in verdict["reasons"]))


def rounds(label: str, count: int, run: Callable[[], list[dict]], inference: bool = False,
           single: Callable[[], dict[str, float]] | None = None) -> list[Counter]:
    tallies = []
    for i in range(count):
        verdicts = run()
        tally = Counter("regressed" if regressed(v, inference) else
                        "unchanged" if v["verdict"] == "regressed" else v["verdict"]
                        for v in verdicts)
        metric = "inference" if inference else "export time"
        changes = {v["name"]: next((m["ratio"] for m in v["metrics"] if m["name"] == metric),
                                   None) for v in verdicts}
        ratios = ", ".join(f"{name} {change:.2f}" for name, change in changes.items()
                           if change)
        moved = [f"{v['name']}: {v['moved'][0]['module']}" for v in verdicts
                 if inference and regressed(v, True) and v["moved"]]
        if moved:
            ratios += f"; moved most: {', '.join(moved)}"
        if single:
            flagged = single()
            tally["single"] = len(flagged)
            ratios += "; by single runs: " + (", ".join(
                f"{name} {ratio:.2f}" for name, ratio in flagged.items()) or "none")
        print(f"{label} {i + 1}/{count}: {dict(tally)}  ({ratios})", flush=True)
        tallies.append(tally)
    return tallies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=ROOT / "examples" / "manifest.yaml")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--inference", action="store_true",
                        help="gate inference latency (onnxruntime) instead of export time")
    args = parser.parse_args()
    changed: list[Counter] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        baseline = workdir / "baseline.json"
        manifest = (inference_manifest(args.manifest, workdir) if args.inference
                    else args.manifest)
        check(manifest, baseline, workdir, args.core, "--update-baseline")
        single = (lambda: by_single_runs(workdir, baseline)) if args.inference else None
        quiet = rounds("unchanged", args.runs,
                       lambda: check(manifest, baseline, workdir, args.core), args.inference,
                       single)
        hog = subprocess.Popen(["taskset", "-c", str(args.core), sys.executable, "-c",
                                "while True: pass"])
        try:
            slowed = rounds("slowed", args.runs,
                            lambda: check(manifest, baseline, workdir, args.core),
                            args.inference, single)
        finally:
            hog.kill()
            hog.wait()
        if args.inference:
            wider = inference_manifest(args.manifest, workdir, wider=True)
            changed = rounds("changed", max(args.runs // 3, 1),
                             lambda: check(wider, baseline, workdir, args.core), True)
    false_alarms = sum(1 for t in quiet if t["regressed"])
    detections = sum(1 for t in slowed if t["regressed"])
    models = sum(n for key, n in slowed[0].items() if key != "single") if slowed else 0
    print(f"false alarms: {false_alarms} of {args.runs} unchanged runs "
          f"({sum(t['regressed'] for t in quiet)} of {models * args.runs} model verdicts)")
    print(f"detections: {detections} of {args.runs} slowed runs "
          f"({sum(t['regressed'] for t in slowed)} of {models * args.runs} model verdicts)")
    if args.inference:
        print(f"by single runs instead: {sum(t['single'] for t in quiet)} false alarms, "
              f"{sum(t['single'] for t in slowed)} detections (model verdicts)")
    if changed:
        print(f"real change detected: {sum(1 for t in changed if t['regressed'])} of "
              f"{len(changed)} runs")
    if args.json:
        args.json.write_text(json.dumps({
            "runs": args.runs, "false_alarms": false_alarms, "detections": detections,
            "unchanged": [dict(t) for t in quiet], "slowed": [dict(t) for t in slowed],
            "changed": [dict(t) for t in changed],
        }, indent=1) + "\n")


if __name__ == "__main__":
    main()
