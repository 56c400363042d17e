"""A decoder export checked as it is used: a prompt prefilled with an empty cache, then one
token at a time with ``present`` fed back as ``past``, against PyTorch's own forward with
its own cache at every step.

Both sides are fed the tokens PyTorch picks (greedy), so every step compares the same
computation; whether onnxruntime would have picked the same token is counted apart. A batch
of one and a left-padded batch of three (the mask zero on the left, positions counted from
each row's first token, as ``generate`` does) run through the same session.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelexport import kvcache
from modelexport.errors import ExportFailed, describe
from modelexport.sidecar import Parity

PROMPT, STEPS = 7, 16
# Left padding per row of the batch of three: none, some, most of the prompt.
PADDING = ((0,), (0, 2, 5))


@dataclass(frozen=True)
class Generation:
    """One generation compared: the largest logits difference per step (step 0 is the
    prefill), and the steps where onnxruntime's greedy token differs from PyTorch's."""

    differences: tuple[float, ...]
    other_tokens: tuple[int, ...]


def compare(path: Path, model: torch.nn.Module, tolerance: float, seed: int = 0,
            steps: int = STEPS) -> Parity:
    """Generation at batch 1 and at a left-padded batch 3, as one parity record: its largest
    difference, passed only within ``tolerance`` and with every greedy token the same."""
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types
        raise ExportFailed(f"{path.name}: invalid ONNX: {describe(exc)}") from exc
    runs = [generate(session, model, padding, seed, steps) for padding in PADDING]
    worst = max(max(run.differences) for run in runs)
    same = not any(run.other_tokens for run in runs)
    return Parity(len(session.get_outputs()), worst, tolerance, worst <= tolerance and same)


def generate(session: Any, model: torch.nn.Module, padding: tuple[int, ...], seed: int,
             steps: int) -> Generation:
    """``steps`` greedy tokens after a prompt, one row per entry of ``padding`` (how many of
    its first prompt positions are padding)."""
    forward = kvcache.cache_forward(model)
    if forward is None:
        raise ExportFailed(f"{type(model).__name__} was not loaded for {kvcache.TASK}")
    layout = forward.layout
    batch = len(padding)
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, kvcache.vocabulary(model), (batch, PROMPT), generator=generator)
    mask = torch.ones(batch, PROMPT, dtype=torch.long)
    for row, pad in enumerate(padding):
        mask[row, :pad] = 0
    past = {kvcache.past_name(index, kind): np.zeros((batch, heads, 0, size), layout.dtype)
            for index, sizes in enumerate(layout.layers)
            for kind, (heads, size) in zip(kvcache.KINDS, sizes, strict=True)}
    cache = None
    differences, other = [], []
    new = ids
    for step in range(steps + 1):
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -new.shape[1]:]
        given = {"input_ids": new, "attention_mask": mask, "position_ids": positions}
        feeds = {name: given[name].numpy() for name in layout.takes} | past
        try:
            got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds),
                           strict=True))
        except Exception as exc:  # onnxruntime raises its own types
            raise ExportFailed(f"onnxruntime fails at generation step {step} (past length "
                               f"{mask.shape[1] - new.shape[1]}): {describe(exc)}") from exc
        with torch.no_grad():
            logits, cache = forward.reference(new, mask, positions, cache)
        real = mask[:, -new.shape[1]:].bool().numpy()  # padded positions predict nothing
        expected = logits.numpy()
        differences.append(float(np.abs(expected[real].astype("float64")
                                        - got["logits"][real].astype("float64")).max()))
        chosen = expected[:, -1].argmax(-1)
        if (got["logits"][:, -1].argmax(-1) != chosen).any():
            other.append(step)
        past = {name.replace(kvcache.PRESENT, kvcache.PAST, 1): value
                for name, value in got.items() if name.startswith(kvcache.PRESENT + ".")}
        new = torch.from_numpy(chosen).reshape(batch, 1)
        mask = torch.cat([mask, torch.ones(batch, 1, dtype=torch.long)], dim=1)
    return Generation(tuple(differences), tuple(other))

