"""How steady the export's peak memory is, and whether its verdict raises false alarms:
A/A checks of one manifest on unchanged code.

    python bench/memory_spread.py                      # examples/manifest.yaml, 20 checks
    python bench/memory_spread.py --checks 20 --manifest examples/manifest.yaml
    python bench/memory_spread.py --inference          # inference memory too, and a change

1. `check --update-baseline` makes a baseline.
2. `check` runs --checks times against it, nothing changed: a run whose verdict names
   `export memory` (or `inference memory`) is a false alarm (goal: 0 of 20).
3. Per model: the median export peak of each check (and the arena's peak in a run), their
   min / median / max and the largest relative distance from the baseline's, beside the
   default thresholds (+10 %) and floors (20 MB; 1 MB).
4. With --inference, two real changes, each checked once: bert-tiny's feed-forward 4x
   wider (intermediate_size 512 -> 2048), and its inputs 8x longer (128 tokens): the
   report's memory verdict and where activations moved.

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


CHANGES = {
    "feed-forward 4x wider (intermediate_size 512 -> 2048)":
        lambda bert: bert["source"]["config"].update(intermediate_size=2048),
    "inputs 8x longer (128 tokens)":
        lambda bert: bert.update(inputs=[{"name": "input_ids", "shape": [2, 128],
                                          "dtype": "int64", "range": [0, 1000]}]),
}


def profiled(manifest: Path, work: Path, change: str | None = None) -> Path:
    """The manifest with its inference memory gated (and bert-tiny changed by ``change``,
    one of ``CHANGES``), written into ``work``; its models are config-built, so paths do
    not matter."""
    import yaml

    document = yaml.safe_load(manifest.read_text())
    document.setdefault("defaults", {})["inference"] = {"runs": 20, "memory": True}
    for model in document["models"]:
        if change and model["name"] == "bert-tiny":
            CHANGES[change](model)
    path = work / f"{len(change or '')}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


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
    parser.add_argument("--inference", action="store_true",
                        help="gate inference memory too, and check a real change after")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        manifest = (profiled(args.manifest, work) if args.inference
                    else args.manifest.absolute())
        made = check(manifest, work, "--update-baseline", "--allow-no-baseline")
        if made.returncode != 0:
            sys.exit(made.stdout + made.stderr)
        baseline = json.loads((work / "baseline.json").read_text())["models"]
        base = {name: peaks(record) for name, record in baseline.items()}
        seen: dict[str, list[dict[str, float]]] = {name: [] for name in base}
        alarms = 0
        for i in range(args.checks):
            check(manifest, work)
            report = json.loads((work / "report.json").read_text())["models"]
            flagged = [f"{m['name']}: {r}" for m in report for r in m["reasons"]
                       if "memory" in r]
            alarms += bool(flagged)
            for name, record in json.loads((work / "results.json").read_text())[
                    "models"].items():
                seen[name].append(peaks(record))
            print(f"check {i + 1}: memory flagged {flagged or 'nothing'}", flush=True)
        for change in CHANGES if args.inference else ():
            check(profiled(args.manifest, work, change), work)
            print(f"\nbert-tiny, {change}:")
            for model in json.loads((work / "report.json").read_text())["models"]:
                if model["name"] == "bert-tiny":
                    print("  " + "; ".join(model["reasons"]))
                    for row in model["grown"]:
                        print(f"  {row['module']}  {row['baseline_mb']:.3f} -> "
                              f"{row['current_mb']:.3f} MB")
    if not args.checks:
        return
    print(f"\nfalse alarms of the memory verdicts: {alarms} of {args.checks}\n")
    print("| model | peak | baseline MB | checks' medians MB (min / median / max) | "
          "largest move |\n|---|---|--:|---|--:|")
    for name, found in seen.items():
        for kind in base[name]:
            values = [one[kind] for one in found]
            move = max(abs(v / base[name][kind] - 1) for v in values)
            print(f"| {name} | {kind} | {base[name][kind]:.1f} | {min(values):.1f} / "
                  f"{statistics.median(values):.1f} / {max(values):.1f} | {100 * move:.1f} % |")


def peaks(record: dict) -> dict[str, float]:
    """The export's median peak, and the arena's where profiled, in MB."""
    found = {"export": statistics.median(record["export_peak_bytes"]) / 1e6}
    if "arena_peak_bytes" in record.get("inference", {}):
        found["arena"] = record["inference"]["arena_peak_bytes"] / 1e6
    return found


if __name__ == "__main__":
    main()
