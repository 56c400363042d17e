"""TinyNet: a token classifier of nested modules (embedding, residual blocks, a head), no
transformers. ``build`` is the factory a modelexport manifest names."""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(),
                                 nn.Linear(2 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.norm(x))


class TinyNet(nn.Module):
    def __init__(self, vocab: int, width: int, depth: int, classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.blocks = nn.ModuleList(Block(width) for _ in range(depth))
        self.head = nn.Linear(width, classes)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(input_ids)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def build(vocab: int = 1000, width: int = 32, depth: int = 2, classes: int = 5
          ) -> tuple[TinyNet, dict[str, torch.Tensor]]:
    """The model, and example inputs to trace it with (2 sequences of 12 tokens)."""
    model = TinyNet(vocab, width, depth, classes)
    return model, {"input_ids": torch.randint(0, vocab, (2, 12))}
