"""A small torch MLP predictor."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from elasticnas.predictors.base import Predictor


class MLPPredictor(Predictor):
    """Two hidden layers, full-batch Adam with weight decay; deterministic for a given seed."""

    def __init__(
        self, seed: int | None = None, hidden: int = 64, epochs: int = 200, lr: float = 3e-3, weight_decay: float = 1e-3
    ) -> None:
        super().__init__(seed)
        self.hidden, self.epochs, self.lr, self.weight_decay = hidden, epochs, lr, weight_decay

    def _fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny matrices: extra threads only add synchronisation cost
        try:
            self._train(X, y, sample_weight)
        finally:
            torch.set_num_threads(threads)

    def _train(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None) -> None:
        gen = torch.Generator().manual_seed(0 if self.seed is None else int(self.seed))
        d = X.shape[1]
        self.net = nn.Sequential(
            nn.Linear(d, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, 1),
        )
        with torch.no_grad():
            for p in self.net.parameters():
                if p.dim() == 2:
                    bound = 1.0 / np.sqrt(p.shape[1])
                    p.copy_(torch.rand(p.shape, generator=gen) * 2 * bound - bound)
                else:
                    p.zero_()
        Xt = torch.as_tensor(X, dtype=torch.float32)
        yt = torch.as_tensor(y, dtype=torch.float32)[:, None]
        w = (
            torch.ones_like(yt)
            if sample_weight is None
            else torch.as_tensor(sample_weight / sample_weight.mean(), dtype=torch.float32)[:, None]
        )
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        for _ in range(self.epochs):
            opt.zero_grad()
            loss = torch.mean(w * (self.net(Xt) - yt) ** 2)
            loss.backward()
            opt.step()

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            out = self.net(torch.as_tensor(X, dtype=torch.float32))[:, 0].numpy().astype(float)
        return out, np.zeros(len(X))
