"""The PyTorch network behind the behaviour model (retrieval/behaviour_model.py), used only to
train it; ``export`` gives the numpy arrays serving computes the same query with."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

DROPOUT = 0.2  # on the input items: the held-out loss rose after two epochs without it


class Net(nn.Module):
    tokens: torch.Tensor  # a buffer: saved with the module, not trained

    def __init__(self, n: int, vocab: int, tokens: torch.Tensor, window: int, slots: int, dim: int) -> None:
        super().__init__()
        self.n = n
        self.emb = nn.Embedding(n + 1, dim, padding_idx=0)  # row 0: no item (window padding)
        self.tok = nn.Embedding(vocab, dim, padding_idx=0)
        self.register_buffer("tokens", tokens)  # (n + 1, width) token ids + 1 per item row + 1
        self.slot = nn.Embedding(slots, dim)
        self.pos = nn.Parameter(torch.zeros(window))
        self.mlp = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.bias = nn.Parameter(torch.zeros(n))
        self.drop = nn.Dropout(DROPOUT)

    def items(self, ix: torch.Tensor) -> torch.Tensor:
        """Item vectors for rows + 1 (0: none): the item's own embedding plus its tokens'."""
        return self.emb(ix) + self.tok(self.tokens[ix]).sum(-2)

    def query(self, x: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
        e = self.drop(self.items(x))
        w = torch.softmax(self.pos, 0) * (x > 0)
        z = (e * w[..., None]).sum(1)
        return self.mlp(torch.cat([z, self.slot(slot)], 1))

    def forward(self, x: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
        catalog = self.items(torch.arange(1, self.n + 1))
        return self.query(x, slot) @ catalog.T + self.bias

    @torch.no_grad()
    def export(self) -> dict[str, np.ndarray]:
        catalog = self.items(torch.arange(1, self.n + 1))
        first, second = self.mlp[0], self.mlp[2]
        assert isinstance(first, nn.Linear) and isinstance(second, nn.Linear)
        return {
            "vectors": torch.cat([catalog, self.bias[:, None]], 1).numpy().astype(np.float32),
            "pos_weight": torch.softmax(self.pos, 0).numpy().astype(np.float32),
            "slot": self.slot.weight.numpy().astype(np.float32),
            "w1": first.weight.T.numpy().astype(np.float32),
            "b1": first.bias.numpy().astype(np.float32),
            "w2": second.weight.T.numpy().astype(np.float32),
            "b2": second.bias.numpy().astype(np.float32),
        }
