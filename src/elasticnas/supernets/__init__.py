"""Elastic super-networks: registry and base contract."""

from elasticnas.supernets.base import Supernet

__all__ = ["Supernet"]
