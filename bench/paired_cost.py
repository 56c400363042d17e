"""What measuring the base beside the head costs: a single-side check against a paired one,
and both against the work they measure.

    python bench/paired_cost.py                  # 10 models, 5 alternating rounds
    python bench/paired_cost.py --blocks 40 --repeats 10   # models that take seconds each
    python bench/paired_cost.py --models 10 --rounds 5 --json bench/paired-cost.json
    git worktree add /tmp/before HEAD~3
    python bench/paired_cost.py --blocks 40 --repeats 20 --versus /tmp/before/src

A git repository in a temporary folder holds ``--models`` small factory models (MLPs of
``--blocks`` to ``--blocks`` + 4 blocks) in one manifest (``--repeats`` timed exports and a
50-run profile each).
Each round runs ``check`` (against a baseline of the same code) and ``check --against-ref
HEAD`` (the base beside the head), alternating which goes first. For each it reports the
wall time, and the work it measured: loads, timed exports and inference runs, summed over
every side (what is left of the wall time is the fixed cost: processes, imports, warm-up
exports, sessions). Min/median/max over the rounds; the ratios are of medians, and
wall per work and paired per single are also given round by round, the latter also at one
machine speed (the machine's speed drifts between the runs of a round: a paired run's work
was 1.95-2.39 times its round's one-sided run's, for twice the exports and runs).
``--versus SRC`` adds a third kind to each round: the one-sided check run with the package
in SRC (another commit's ``src/``), so two versions' fixed costs are measured side by side.

A benchmark, not a test: it reports, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from paired_gate import git, nets, work_s  # beside this script, on its path when run


def repository(root: Path, models: int, blocks: int, repeats: int) -> Path:
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    entries = []
    for index in range(models):
        (repo / f"net{index}.py").write_text(nets(width=128 + 32 * index,
                                                  blocks=blocks + index % 5))
        entries.append(f"  - {{name: net{index}, source: {{factory: \"net{index}:build\"}}}}")
    (repo / "models.yaml").write_text(f"defaults: {{repeats: {repeats}, "
                                      "inference: {runs: 50}}\n"
                                      "models:\n" + "\n".join(entries) + "\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "models")
    return repo


def timed(repo: Path, *extra: str, src: Path | None = None) -> tuple[float, float]:
    """(wall seconds, measured work seconds) of one check; ``src``: with the package
    there."""
    started = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **({"PYTHONPATH": str(src)} if src else {})}
    proc = subprocess.run([sys.executable, "-m", "modelexport", "check", "models.yaml",
                           "--allow-no-baseline", *extra], cwd=repo, capture_output=True,
                          text=True, check=False, env=env)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"check failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return wall, work_s(repo)


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": median(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--blocks", type=int, default=2, help="blocks of the smallest model")
    parser.add_argument("--repeats", type=int, default=5, help="timed exports per model")
    parser.add_argument("--versus", type=Path, metavar="SRC",
                        help="also the one-sided check with the package in SRC")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    kinds = ["single", "paired", *(["versus"] if args.versus else [])]
    found: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory(prefix="paired-cost-") as tmp:
        os.chmod(tmp, 0o755)  # as root, the workers run as nobody and read the repository
        repo = repository(Path(tmp), args.models, args.blocks, args.repeats)
        timed(repo, "--update-baseline")
        for index in range(args.rounds):
            # Each kind goes first in turn: the machine's speed drifts within a round too.
            shift = index % len(kinds)
            for kind in kinds[shift:] + kinds[:shift]:
                found[kind].append(timed(repo, *(["--against-ref", "HEAD"]
                                                 if kind == "paired" else []),
                                         src=args.versus if kind == "versus" else None))
                wall, work = found[kind][-1]
                print(f"round {index + 1} {kind}: {wall:.1f} s wall, {work:.2f} s measured "
                      "work", flush=True)
    summary = {kind: {"wall_s": spread([w for w, _ in rows]),
                      "work_s": spread([m for _, m in rows])} for kind, rows in found.items()}
    single, paired = (summary[k]["wall_s"]["median"] for k in ("single", "paired"))
    summary["ratios"] = {
        **{f"{kind}_wall_per_work": summary[kind]["wall_s"]["median"]
           / summary[kind]["work_s"]["median"] for kind in kinds},
        "paired_per_single": paired / single,
    }
    # Per round too: the machine's speed drifts between rounds, and a round's check and
    # its work are measured together.
    summary["rounds"] = {
        **{f"{kind}_wall_per_work": spread([w / m for w, m in rows])
           for kind, rows in found.items()},
        "paired_per_single": spread([p / s for (p, _), (s, _)
                                     in zip(found["paired"], found["single"], strict=True)]),
        # A paired check measures twice a one-sided one's work (both sides' loads, exports
        # and runs): at one machine speed it costs twice its wall per work over theirs.
        "paired_per_single_same_speed": spread([
            2 * (p / pw) / (s / sw) for (p, pw), (s, sw)
            in zip(found["paired"], found["single"], strict=True)]),
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
