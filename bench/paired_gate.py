"""Paired (base beside head) against stored-baseline timing verdicts, under a load that
comes and goes.

    python bench/paired_gate.py                 # 20 checks a mode, core 0
    python bench/paired_gate.py --checks 10 --json bench/paired-gate.json
    python bench/paired_gate.py --repeats 20 --runs 200 --detection-only
    python bench/paired_gate.py --repeats 20 --runs 200 --detection-only --changes last

A git repository in a temporary folder holds a factory model (an MLP of 4 blocks, 64 -> 256
-> 64, batch 32) and a manifest that profiles it (``--runs``, default 50, 1 thread; and
``--repeats`` timed exports, default 10) with no floors, so the statistics decide alone:
export time at +5 %, inference at +3 %. A CPU hog pinned to the
same core as the check switches on and off at random intervals of 0.5-5 s for the whole
run (the same seed for every mode). Then:

1. **stored baseline, A/A**: a baseline made with the hog off, then ``check`` against it
   ``--checks`` times under the fluctuating load: every timing regression is a false alarm.
2. **paired, A/A**: ``check --against-ref HEAD`` (the same tree twice) ``--checks`` times
   under the same load: every timing regression is a false alarm.
3. **paired, a real change**, ``check --against-ref HEAD~1`` ``--checks`` times each: the
   head widens every block's hidden layer 256 -> 288 (inference about +7 %); then, from
   the base again, it adds a fifth block (export time about +20 %); with ``--changes
   last``, a last 64 -> 64 layer after the blocks (export time about +7 %). A detection
   is a timing regression (export time and inference counted apart); the median ratio is
   shown.

With ``--auto``, the stored-baseline checks go through ``--compare-with auto`` instead (the
baseline fits this machine, so it is compared with, and the models it finds slower are
measured again beside the base): A/A, then the 256 -> 288 change against the baseline of the
base. A regression that survives is a failure of the build; one the pairs do not show is
"not confirmed".

Each check's wall time is reported too (the cost of measuring twice). A benchmark, not a
test: it reports, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median

NETS = '''
import torch


class Block(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        self.up = torch.nn.Linear(64, width)
        self.down = torch.nn.Linear(width, 64)

    def forward(self, x):
        return self.down(torch.relu(self.up(x)))


class Net(torch.nn.Module):
    def __init__(self, width, blocks, last):
        super().__init__()
        self.blocks = torch.nn.Sequential(*(Block(width) for _ in range(blocks)))
        self.last = torch.nn.Linear(64, 64) if last else None

    def forward(self, x):
        x = self.blocks(x)
        return self.last(x) if self.last is not None else x


def build():
    return Net(WIDTH, BLOCKS, LAST), {"x": torch.ones(32, 64)}
'''
MANIFEST = """\
defaults:
  repeats: REPEATS
  thresholds: {time: 0.05, floor: 0}
  inference: {runs: RUNS, threshold: 0.03, floor_ms: 0}
models:
  - name: mlp
    source: {factory: "nets:build"}
"""
HOG = "while True: pass"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@b",
                    *args], check=True, capture_output=True)


def nets(width: int = 256, blocks: int = 4, last: bool = False) -> str:
    return (NETS.replace("WIDTH", str(width)).replace("BLOCKS", str(blocks))
            .replace("LAST", str(last)))


# The real changes a paired check should catch, by name: the head's model code.
CHANGES = {"wide": ("256 -> 288 wide", nets(width=288)),
           "fifth": ("a fifth block", nets(blocks=5)),
           "last": ("a last layer", nets(last=True))}


def repository(root: Path, repeats: int = 10, runs: int = 50) -> Path:
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "nets.py").write_text(nets())
    (repo / "models.yaml").write_text(MANIFEST.replace("REPEATS", str(repeats))
                                      .replace("RUNS", str(runs)))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    return repo


@contextmanager
def fluctuating_load(core: int, seed: int) -> Iterator[None]:
    """A CPU hog on ``core``, stopped and continued at random intervals of 0.5-5 s."""
    hog = subprocess.Popen(["taskset", "-c", str(core), sys.executable, "-c", HOG])
    stop = subprocess.Popen([sys.executable, "-c", f"""
import os, random, signal, time
rng = random.Random({seed})
on = True
while True:
    time.sleep(rng.uniform(0.5, 5.0))
    on = not on
    os.kill({hog.pid}, signal.SIGCONT if on else signal.SIGSTOP)
"""])
    try:
        yield
    finally:
        stop.kill()
        stop.wait()
        hog.send_signal(signal.SIGCONT)
        hog.kill()
        hog.wait()


def work_s(repo: Path) -> float:
    """The seconds of measured work in the last check's results: loads, timed exports and
    inference runs, of every side (the rest of a check's wall time is its fixed cost:
    starting processes, imports, the warm-up export, sessions)."""
    from modelexport.gate import results
    from modelexport.gate.records import Measured

    document = results.load(repo / "modelexport-out" / "results.json")
    records = [*document.models.values(), *(document.base.models.values()
                                            if document.base else [])]
    return sum(r.work_s for r in records if isinstance(r, Measured))


def check(repo: Path, core: int, *extra: str) -> tuple[dict, float]:
    report = repo / "report.json"
    report.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = subprocess.run(["taskset", "-c", str(core), sys.executable, "-m", "modelexport",
                           "check", "models.yaml", "--report-json", str(report), *extra],
                          cwd=repo, capture_output=True, text=True, check=False,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - started
    if not report.is_file():
        sys.exit(f"check wrote no report (exit {proc.returncode}): {proc.stderr[-2000:]}")
    (verdict,) = json.loads(report.read_text())["models"]
    return verdict, wall


def timing_alarms(verdict: dict) -> tuple[bool, bool]:
    """(export time, inference) regressed."""
    reasons = verdict["reasons"]
    return (any(r.startswith("export time +") for r in reasons),
            any(r.startswith("inference +") for r in reasons))


def ratio(verdict: dict, metric: str) -> float | None:
    """The report's change of ``metric`` (paired: the median of the pairs' ratios)."""
    return next((m["ratio"] for m in verdict["metrics"] if m["name"] == metric), None)


def mode(label: str, checks: int, repo: Path, core: int, *extra: str) -> dict:
    rows = []
    for index in range(checks):
        verdict, wall = check(repo, core, *extra)
        time_alarm, inference_alarm = timing_alarms(verdict)
        unconfirmed = sum(r.startswith("not confirmed: ") for r in verdict["reasons"])
        rows.append({"time": time_alarm, "inference": inference_alarm, "wall_s": wall,
                     "not_confirmed": unconfirmed,
                     "work_s": work_s(repo), "time_ratio": ratio(verdict, "export time"),
                     "inference_ratio": ratio(verdict, "inference")})
        print(f"  {label} {index + 1}/{checks}: time {'REGRESSED' if time_alarm else 'ok'} "
              f"(x{rows[-1]['time_ratio'] or 0:.3f}), inference "
              f"{'REGRESSED' if inference_alarm else 'ok'} "
              f"(x{rows[-1]['inference_ratio'] or 0:.3f}), {wall:.1f} s", flush=True)
    summary = {
        "mode": label, "checks": checks,
        "time_regressed": sum(r["time"] for r in rows),
        "inference_regressed": sum(r["inference"] for r in rows),
        "not_confirmed": sum(r["not_confirmed"] for r in rows),
        "median_time_ratio": median(r["time_ratio"] for r in rows if r["time_ratio"]),
        "median_inference_ratio": median(r["inference_ratio"] for r in rows
                                         if r["inference_ratio"]),
        "wall_s": {"min": min(r["wall_s"] for r in rows),
                   "median": median(r["wall_s"] for r in rows),
                   "max": max(r["wall_s"] for r in rows)},
        "work_s": median(r["work_s"] for r in rows),
    }
    print(f"{label}: export time regressed in {summary['time_regressed']}/{checks}, "
          f"inference in {summary['inference_regressed']}/{checks} "
          f"({summary['not_confirmed']} not confirmed); wall "
          f"{summary['wall_s']['median']:.1f} s median, measured work "
          f"{summary['work_s']:.2f} s median", flush=True)
    return summary


def confirmations(args: argparse.Namespace, repo: Path) -> list[dict]:
    """Checks with --compare-with auto: A/A, then a real change, against the stored baseline
    of the base, each regression re-measured beside the base."""
    auto = ("--compare-with", "auto", "--against-ref")
    found = [mode("auto, A/A", args.checks, repo, args.core, *auto, "HEAD")]
    (repo / "nets.py").write_text(nets(width=288))
    git(repo, "commit", "-qam", "wider")
    found.append(mode("auto, 256 -> 288 wide", args.checks, repo, args.core, *auto, "HEAD~1"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=20)
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--detection-only", action="store_true",
                        help="skip the two A/A modes")
    parser.add_argument("--auto", action="store_true",
                        help="the stored baseline with confirmation beside the base instead")
    parser.add_argument("--changes", nargs="*", choices=list(CHANGES),
                        default=["wide", "fifth"], help="the real changes to detect")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    found = []
    with tempfile.TemporaryDirectory(prefix="paired-gate-") as tmp:
        os.chmod(tmp, 0o755)  # as root, the workers run as nobody and read the repository
        repo = repository(Path(tmp), args.repeats, args.runs)
        check(repo, args.core, "--update-baseline")  # quiet: the hog is not running yet
        with fluctuating_load(args.core, args.seed):
            if args.auto:
                found += confirmations(args, repo)
            elif not args.detection_only:
                found.append(mode("stored baseline, A/A", args.checks, repo, args.core))
                found.append(mode("paired, A/A", args.checks, repo, args.core,
                                  "--against-ref", "HEAD"))
            for label, change in () if args.auto else [CHANGES[c] for c in args.changes]:
                (repo / "nets.py").write_text(change)
                git(repo, "commit", "-qam", label)
                found.append(mode(f"paired, {label}", args.checks, repo, args.core,
                                  "--against-ref", "HEAD~1"))
                git(repo, "reset", "-q", "--hard", "HEAD~1")
    if args.json:
        args.json.write_text(json.dumps(found, indent=1) + "\n")


if __name__ == "__main__":
    main()
