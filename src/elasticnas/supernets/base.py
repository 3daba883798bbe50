from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from torch import nn

from elasticnas.space import Config, SearchSpace


class Supernet(nn.Module, ABC):
    """An elastic super-network: any configuration of :attr:`search_space` is a sub-network.

    Contract (checked by ``elasticnas.testing``):

    * :meth:`activate` switches the module in place to run a sub-network with shared weights;
    * :meth:`extract` returns a standalone ``nn.Module`` holding only the active
      weights, equal in eval mode to the activated super-network;
    * :meth:`costs` counts MACs and parameters analytically;
    * :meth:`input_shape` gives the (C, H, W) input of a sub-network.
    """

    name: str = ""
    search_space: SearchSpace

    @abstractmethod
    def activate(self, config: Mapping[str, Any]) -> None:
        """Make the forward pass run the sub-network ``config``."""

    @abstractmethod
    def extract(self, config: Mapping[str, Any]) -> nn.Module:
        """A standalone copy of the sub-network ``config`` (only its active weights)."""

    @abstractmethod
    def costs(self, config: Mapping[str, Any]) -> dict[str, float]:
        """Analytic ``{"macs": ..., "params": ...}`` of sub-network ``config`` at its resolution."""

    @abstractmethod
    def input_shape(self, config: Mapping[str, Any]) -> tuple[int, int, int]:
        """(channels, height, width) of one input image of sub-network ``config``."""

    def max_config(self) -> Config:
        """The largest sub-network: the last (largest) value of every choice."""
        return self.search_space.from_genes(self.search_space.cardinalities - 1)

    def min_config(self) -> Config:
        """The smallest sub-network: the first (smallest) value of every choice."""
        return self.search_space.from_genes(self.search_space.cardinalities * 0)
