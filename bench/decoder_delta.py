"""Where a decoder's per-token and first-token time moved when one layer changed: a Llama of
4 layers (hidden 512, vocabulary 32,000, random weights) exported with its KV cache, and
the same with layer 2's MLP twice as wide, gated by `modelexport check` as a user runs it:
the wider one as a pull request's head beside the plain one as its base (`--against`,
both measured in one run, their runs interleaved), or with `--stored` the second check
against the first's stored baseline. Prints both latencies and the modules whose own time
moved most, as the report's tables have them.

    python bench/decoder_delta.py              # paired, 40 profiled runs per phase
    python bench/decoder_delta.py --stored     # against a stored baseline instead

A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

FACTORY = '''
import copy
import transformers
from transformers.models.llama.modeling_llama import LlamaMLP


def build(wider: int = -1):
    config = transformers.AutoConfig.for_model(
        "llama", hidden_size=512, num_hidden_layers=4, num_attention_heads=8,
        num_key_value_heads=4, intermediate_size=1408, vocab_size=32000)
    model = transformers.AutoModelForCausalLM.from_config(config)
    if wider >= 0:
        wide = copy.deepcopy(config)
        wide.intermediate_size *= 2
        model.model.layers[wider].mlp = LlamaMLP(wide)
    return model
'''

MANIFEST = '''version: 1
defaults: {{repeats: 1, timeout: 600, inference: {{runs: {runs}, threshold: {threshold}}}}}
models:
  - name: llama
    task: text-generation-with-past
    source: {{factory: "decoder:build", kwargs: {kwargs}, python_path: ["."]}}
'''


def tree(folder: Path, args: argparse.Namespace, kwargs: str) -> Path:
    """A checkout of its own: the factory and the manifest."""
    folder.mkdir(mode=0o755)  # the gate's workers may run as another user, who must read it
    (folder / "decoder.py").write_text(FACTORY)
    (folder / "models.yaml").write_text(MANIFEST.format(runs=args.runs, kwargs=kwargs,
                                                        threshold=args.threshold))
    return folder


def check(folder: Path, *args: str) -> str:
    """What ``modelexport check`` printed."""
    done = subprocess.run([sys.executable, "-m", "modelexport", "check", "models.yaml", *args],
                          cwd=folder, check=False, capture_output=True, text=True)
    if done.returncode not in (0, 1):  # 1: a regression, which is what this is about
        sys.exit(f"modelexport check failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def main() -> None:
    from modelexport.gate import results
    from modelexport.gate.latency import module_deltas
    from modelexport.gate.records import Measured

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--threshold", type=float, default=0.05,
                        help="the latency change the gate calls a regression (manifest "
                        "default 0.10; the wider layer adds about 7 %%)")
    parser.add_argument("--stored", action="store_true",
                        help="against a stored baseline, not the base beside the head")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        Path(name).chmod(0o755)
        base = tree(Path(name) / "base", args, "{}")
        head = tree(Path(name) / "head", args, "{wider: 2}")
        if args.stored:
            check(base, "--update-baseline", "--baseline", str(head / "baseline.json"))
            printed = check(head, "--baseline", str(head / "baseline.json"))
            before = results.load(head / "baseline.json").models["llama"]
        else:
            printed = check(head, "--against", str(base))
            found = results.load(head / "modelexport-out" / "results.json").base
            assert found is not None
            before = found.models["llama"]
        after = results.load(head / "modelexport-out" / "results.json").models["llama"]
    assert isinstance(before, Measured) and isinstance(after, Measured)
    print(printed.split("results: ", 1)[-1])  # the verdict and the report's own tables
    for label, was, now in (("per token", before.inference, after.inference),
                            ("first token", before.first_token, after.first_token)):
        assert was is not None and now is not None
        print(f"{label}: {statistics.median(was.latency_ms):.3f} -> "
              f"{statistics.median(now.latency_ms):.3f} ms (median of {args.runs} runs)")
        for row in module_deltas(was, now):
            print(f"  {row.where}  {row.before:.3f} -> {row.after:.3f} ms")


if __name__ == "__main__":
    main()
