"""Fixed-length windows over a token stream, for language models."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from elasticnas.errors import ElasticNASError


class TokenWindows(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Windows of ``seq_len`` tokens: item ``i`` is ``(input_ids, target_ids)``, int64, the target the input
    shifted by one token.

    Window ``i`` starts at token ``i * seq_len``: ``input_ids = tokens[s : s + seq_len]`` and
    ``target_ids = tokens[s + 1 : s + seq_len + 1]``. Windows do not overlap (only a target's last
    token is the next input's first); the stream's last tokens that fill no window are left out.
    """

    def __init__(self, tokens: torch.Tensor, seq_len: int, vocab_size: int) -> None:
        if seq_len < 1:
            raise ElasticNASError(f"seq_len must be >= 1, got {seq_len}")
        if len(tokens) < seq_len + 1:
            raise ElasticNASError(f"{len(tokens)} tokens hold no window of {seq_len} + 1 tokens")
        self.tokens = tokens
        self.seq_len = seq_len
        self.vocab_size = vocab_size

    def __len__(self) -> int:
        return (len(self.tokens) - 1) // self.seq_len

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"window {index} out of range for {n} windows")
        start = (index % n) * self.seq_len
        chunk = self.tokens[start : start + self.seq_len + 1].long()
        return chunk[:-1], chunk[1:]
