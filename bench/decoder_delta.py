"""Where a decoder's per-token and first-token time moved when one layer changed: a Llama of
4 layers (hidden 512, vocabulary 32,000, random weights) exported with its KV cache, then
the same with layer 2's MLP twice as wide, each gated by `modelexport check` as a user runs
it (a factory in a scratch folder; the second check against the first's baseline). Prints
both latencies and the modules whose own time moved most, as the report's tables have them.

    python bench/decoder_delta.py              # 40 profiled runs per phase
    python bench/decoder_delta.py --runs 100

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
defaults: {{repeats: 1, timeout: 600, inference: {{runs: {runs}}}}}
models:
  - name: llama
    task: text-generation-with-past
    source: {{factory: "decoder:build", kwargs: {kwargs}, python_path: ["."]}}
'''


def check(folder: Path, runs: int, kwargs: str, *args: str) -> None:
    (folder / "models.yaml").write_text(MANIFEST.format(runs=runs, kwargs=kwargs))
    done = subprocess.run([sys.executable, "-m", "modelexport", "check", "models.yaml", *args],
                          cwd=folder, check=False, capture_output=True, text=True)
    if done.returncode not in (0, 1):  # 1: a regression, which is what this is about
        sys.exit(f"modelexport check failed:\n{done.stdout}{done.stderr}")


def main() -> None:
    from modelexport.gate import results
    from modelexport.gate.latency import module_deltas
    from modelexport.gate.records import Measured

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        folder.chmod(0o755)  # the gate's workers may run as another user, who must read it
        (folder / "decoder.py").write_text(FACTORY)
        check(folder, args.runs, "{}", "--update-baseline")
        check(folder, args.runs, "{wider: 2}")
        before = results.load(folder / "modelexport-baseline.json").models["llama"]
        after = results.load(folder / "modelexport-out" / "results.json").models["llama"]
    assert isinstance(before, Measured) and isinstance(after, Measured)
    for label, was, now in (("per token", before.inference, after.inference),
                            ("first token", before.first_token, after.first_token)):
        assert was is not None and now is not None
        print(f"{label}: {statistics.median(was.latency_ms):.3f} -> "
              f"{statistics.median(now.latency_ms):.3f} ms (median of {args.runs} runs)")
        for row in module_deltas(was, now):
            print(f"  {row.where}  {row.before_ms:.3f} -> {row.after_ms:.3f} ms")


if __name__ == "__main__":
    main()
