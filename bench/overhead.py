"""What HTP tagging costs: modelexport vs a bare torch.onnx.export, side by side.

For each model and exporter, in one process: load the model once, build the inputs once,
then alternate bare export / modelexport export (A B B A ...) after one warm-up of each, and
report min / median / max wall seconds, the ratio of medians (wall and CPU seconds), the
median of the per-round ratios (each round's two runs share the machine's mood) with a
distribution-free 95 % confidence interval (the ratio is settled only when it is narrow), and
modelexport's own phases as a share of the bare export.
Peak RSS is a high-water mark, so it is measured in fresh child processes (one per run,
alternating) instead.

    python bench/overhead.py                          # all models, both exporters
    python bench/overhead.py --models bert-base,resnet-50 --runs 7 --rss 3
    python bench/overhead.py --json bench/results.json

Targets: median ratio <= 1.05 on bert-base and resnet-50 for both exporters,
peak RSS ratio <= 1.2. This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

# Full-size configs (random weights); overrides of the config classes' defaults.
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "bert-tiny": ("bert", {"hidden_size": 128, "num_hidden_layers": 2,
                           "num_attention_heads": 2, "intermediate_size": 512}),
    "bert-base": ("bert", {}),
    "resnet-50": ("resnet", {}),
    "vit-base": ("vit", {}),
    "gpt2": ("gpt2", {}),
}


def prepare(name: str):
    """Load the model and its inputs once, as both contestants will see them."""
    import inspect

    from modelexport import inputs, sources

    model_type, config = MODELS[name]
    source = sources.Source("config", model_type=model_type, config=config)
    loaded = sources.load(source)
    specs = inputs.default_specs(loaded.model, loaded.config)
    tensors = inputs.make(specs)
    accepts = inspect.signature(loaded.model.forward).parameters
    constants = {"use_cache": False} if "use_cache" in accepts else {}
    return source, loaded, specs, tensors, constants


def bare_export(model, tensors, constants, exporter: str, path: Path) -> None:
    """The plain call a user would make. TorchScript needs the keyword adapter to run at
    all on transformers 5 models ("got multiple values for argument 'use_cache'"), so both
    sides use it."""
    import torch

    from modelexport.htp.torchscript import keyword_forward

    if exporter == "torchscript":
        with keyword_forward(model, list(tensors), constants):
            torch.onnx.export(model, tuple(tensors.values()), path, dynamo=False,
                              input_names=list(tensors))
    else:
        torch.onnx.export(model, (), path, kwargs={**tensors, **constants}, dynamo=True,
                          verbose=False, external_data=False)


def htp_export(source, loaded, specs, exporter: str, path: Path) -> float:
    """Export with modelexport; returns the seconds of its own phases (the work a bare
    export does not do: inputs, call tree, projection, sidecar validation)."""
    from modelexport.htp.export import export_module
    from modelexport.htp.options import ExportOptions

    # Fixed shapes, as the bare call exports them: the same graph on both sides.
    options = ExportOptions(exporter=exporter, inputs=tuple(specs), dynamic={})
    timings = export_module(loaded.model, loaded.config, path, options, source).sidecar.timings
    return sum(timings[phase] for phase in ("inputs", "trace", "project", "validate"))


def time_pair(name: str, exporter: str, runs: int, workdir: Path) -> dict[str, Any]:
    from modelexport import stats

    source, loaded, specs, tensors, constants = prepare(name)
    samples: dict[str, list[float]] = {"bare": [], "modelexport": []}
    cpu: dict[str, list[float]] = {"bare": [], "modelexport": []}
    own: list[float] = []
    for i in range(runs + 1):  # the first round is the warm-up
        # A B, B A, ...: neither side always runs second; and each starts with no garbage
        # of the other's (dynamo leaves large cyclic graphs for the collector) and none of
        # its dirty pages: measured, a run that followed the other side paid for writing
        # back the other's file (bert-base: +1 s), one that followed itself did not (its
        # overwrite dropped them), which made every pair ratio swing by 20 %.
        for side in ("bare", "modelexport")[:: 1 if i % 2 else -1]:
            path = workdir / f"{name}-{exporter}-{side}.onnx"
            gc.collect()
            os.sync()
            started, started_cpu = time.perf_counter(), time.process_time()
            if side == "bare":
                bare_export(loaded.model, tensors, constants, exporter, path)
            else:
                own_s = htp_export(source, loaded, specs, exporter, path)
            if i:
                samples[side].append(time.perf_counter() - started)
                cpu[side].append(time.process_time() - started_cpu)
                if side == "modelexport":
                    own.append(own_s)
    median = {side: statistics.median(values) for side, values in samples.items()}
    pair_ratios = [m / b for b, m in zip(samples["bare"], samples["modelexport"], strict=True)]
    median_cpu = {side: statistics.median(values) for side, values in cpu.items()}
    return {
        "model": name, "exporter": exporter, "samples": samples, "cpu_samples": cpu,
        "ratio": median["modelexport"] / median["bare"],
        # CPU seconds are less at the mercy of other tenants than wall seconds.
        "cpu_ratio": median_cpu["modelexport"] / median_cpu["bare"],
        # modelexport's own phases against the bare export: not at the mercy of noise.
        "own_share": statistics.median(own) / median["bare"],
        "pair_ratios": pair_ratios,
        # Where the median pair ratio lies, noise included: with this machine's +-30 %
        # swings from run to run, 15-21 rounds still leave it 10-20 % wide.
        "pair_interval": stats.median_interval(pair_ratios),
    }


def child_rss(name: str, exporter: str, side: str, workdir: Path) -> int:
    """Peak RSS (KiB) of a fresh process that loads the model and exports it once."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", name, exporter, side, str(workdir)],
        capture_output=True, text=True, check=True,
    )
    return int(proc.stdout.strip().splitlines()[-1])


def run_child(name: str, exporter: str, side: str, workdir: Path) -> None:
    from modelexport.gate.worker import peak_rss_bytes

    source, loaded, specs, tensors, constants = prepare(name)
    path = workdir / f"rss-{name}-{exporter}-{side}.onnx"
    if side == "bare":
        bare_export(loaded.model, tensors, constants, exporter, path)
    else:
        htp_export(source, loaded, specs, exporter, path)
    # This process's own peak, not ru_maxrss: that reports the benchmark process's RSS at
    # the fork, which is how an earlier version of this script printed 1.00 everywhere.
    print(peak_rss_bytes() // 1024)


def spread(values: list[float]) -> str:
    return (f"{min(values):7.3f} {statistics.median(values):7.3f} {max(values):7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--exporters", default="torchscript,dynamo")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per side (>= 5)")
    parser.add_argument("--rss", type=int, default=3,
                        help="child processes per side for peak RSS (0: skip)")
    parser.add_argument("--json", type=Path, help="also write the raw samples here")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import logging

    logging.disable(logging.WARNING)
    if args.child:
        name, exporter, side, workdir = args.child
        run_child(name, exporter, side, Path(workdir))
        return

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"{'model':10} {'exporter':12} {'bare s (min med max)':>24} "
              f"{'modelexport s (min med max)':>30} {'ratio':>6} {'pair med (95% CI)':>21} "
              f"{'CPU ratio':>9} {'own %':>6} {'RSS ratio':>9}")
        for name in args.models.split(","):
            for exporter in args.exporters.split(","):
                row = time_pair(name, exporter, args.runs, workdir)
                if args.rss:
                    rss = {side: [child_rss(name, exporter, side, workdir)
                                  for _ in range(args.rss)]
                           for side in ("bare", "modelexport")}
                    row["peak_rss_kib"] = rss
                    row["rss_ratio"] = (statistics.median(rss["modelexport"])
                                        / statistics.median(rss["bare"]))
                rows.append(row)
                rss_text = f"{row['rss_ratio']:9.3f}" if "rss_ratio" in row else f"{'-':>9}"
                interval = row["pair_interval"]
                interval_text = f"({interval[0]:.3f}-{interval[1]:.3f})" if interval else ""
                print(f"{name:10} {exporter:12} {spread(row['samples']['bare']):>24} "
                      f"{spread(row['samples']['modelexport']):>30} {row['ratio']:6.3f} "
                      f"{statistics.median(row['pair_ratios']):6.3f} {interval_text:>14} "
                      f"{row['cpu_ratio']:9.3f} {100 * row['own_share']:6.2f} {rss_text}",
                      flush=True)
    if args.json:
        import torch

        machine = {"python": platform.python_version(), "torch": torch.__version__,
                   "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
