"""How good is the gate: false alarms on an unchanged machine, detections on a slowed one.

    python bench/gate_quality.py                      # examples/manifest.yaml, 10 + 10 runs
    python bench/gate_quality.py --runs 10 --core 0 --json bench/gate-quality.json

1. A baseline is made by the same code: `check --update-baseline`, pinned to one core.
2. `check` runs --runs times against it, same core, nothing else running: every run with a
   `regressed` verdict is a false alarm (goal: 0 of 10).
3. A CPU-bound process is pinned to the same core (taskset) and `check` runs --runs times
   again: the machine is slower by far more than 20 %; every run with a `regressed` verdict
   is a detection (goal: 10 of 10, at least 9).

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
    subprocess.run(
        ["taskset", "-c", str(core), sys.executable, "-m", "modelexport.cli", "check",
         str(manifest), "--baseline", str(baseline), "--results", str(workdir / "r.json"),
         "--report-json", str(report), *extra],
        check=False, capture_output=True, text=True,
    )
    return json.loads(report.read_text())["models"]


def rounds(label: str, count: int, run: Callable[[], list[dict]]) -> list[Counter]:
    tallies = []
    for i in range(count):
        verdicts = run()
        tally = Counter(v["verdict"] for v in verdicts)
        ratios = ", ".join(f"{v['name']} {v['ratio']:.2f}" for v in verdicts if v["ratio"])
        print(f"{label} {i + 1}/{count}: {dict(tally)}  ({ratios})", flush=True)
        tallies.append(tally)
    return tallies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=ROOT / "examples" / "manifest.yaml")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        baseline = workdir / "baseline.json"
        check(args.manifest, baseline, workdir, args.core, "--update-baseline")
        quiet = rounds("unchanged", args.runs,
                       lambda: check(args.manifest, baseline, workdir, args.core))
        hog = subprocess.Popen(["taskset", "-c", str(args.core), sys.executable, "-c",
                                "while True: pass"])
        try:
            slowed = rounds("slowed", args.runs,
                            lambda: check(args.manifest, baseline, workdir, args.core))
        finally:
            hog.kill()
            hog.wait()
    false_alarms = sum(1 for t in quiet if t["regressed"])
    detections = sum(1 for t in slowed if t["regressed"])
    print(f"false alarms: {false_alarms} of {args.runs} unchanged runs")
    print(f"detections: {detections} of {args.runs} slowed runs")
    if args.json:
        args.json.write_text(json.dumps({
            "runs": args.runs, "false_alarms": false_alarms, "detections": detections,
            "unchanged": [dict(t) for t in quiet], "slowed": [dict(t) for t in slowed],
        }, indent=1) + "\n")


if __name__ == "__main__":
    main()
