"""How steady the export's peak memory is, and whether its verdict raises false alarms:
A/A checks of one manifest on unchanged code.

    python bench/memory_spread.py                      # examples/manifest.yaml, 20 checks
    python bench/memory_spread.py --checks 20 --manifest examples/manifest.yaml

1. `check --update-baseline` makes a baseline.
2. `check` runs --checks times against it, nothing changed: a run whose verdict names
   `export memory` is a false alarm of the memory verdict (goal: 0 of 20).
3. Per model: the median peak of each check, their min / median / max and the largest
   relative distance from the baseline's, beside the default threshold (+10 %) and floor
   (20 MB).

A benchmark, not a test: it reports, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).parent.parent


def check(manifest: Path, work: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelexport", "check", str(manifest),
                           "--baseline", str(work / "baseline.json"), "--results",
                           str(work / "results.json"), "--report-json",
                           str(work / "report.json"), *extra],
                          capture_output=True, text=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=ROOT / "examples" / "manifest.yaml")
    parser.add_argument("--checks", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        made = check(args.manifest.absolute(), work, "--update-baseline", "--allow-no-baseline")
        if made.returncode != 0:
            sys.exit(made.stdout + made.stderr)
        baseline = json.loads((work / "baseline.json").read_text())["models"]
        base_mb = {name: statistics.median(r["export_peak_bytes"]) / 1e6
                   for name, r in baseline.items()}
        medians: dict[str, list[float]] = {name: [] for name in base_mb}
        alarms = 0
        for i in range(args.checks):
            check(args.manifest.absolute(), work)
            report = json.loads((work / "report.json").read_text())["models"]
            flagged = [m["name"] for m in report
                       if any(r.startswith("export memory") for r in m["reasons"])]
            alarms += bool(flagged)
            for name, record in json.loads((work / "results.json").read_text())[
                    "models"].items():
                medians[name].append(statistics.median(record["export_peak_bytes"]) / 1e6)
            print(f"check {i + 1}: memory flagged {flagged or 'nothing'}", flush=True)
    print(f"\nfalse alarms of the memory verdict: {alarms} of {args.checks}\n")
    print("| model | baseline MB | checks' medians MB (min / median / max) | largest move |")
    print("|---|--:|---|--:|")
    for name, values in medians.items():
        move = max(abs(v / base_mb[name] - 1) for v in values)
        print(f"| {name} | {base_mb[name]:.1f} | {min(values):.1f} / "
              f"{statistics.median(values):.1f} / {max(values):.1f} | {100 * move:.1f} % |")


if __name__ == "__main__":
    main()
