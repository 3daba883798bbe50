from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from elasticnas.errors import InvalidConfigError
from elasticnas.space._choice import Choice

Config = dict[str, Any]
Seed = int | np.random.Generator | None


def as_rng(seed: Seed) -> np.random.Generator:
    """A numpy Generator from an int seed, an existing Generator, or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _plain(value: Any) -> Any:
    """Turn numpy scalars into Python ones so configs serialise as JSON."""
    if isinstance(value, np.generic):
        return value.item()
    return value


class SearchSpace:
    """Named discrete choices with validation, sampling, variation and encodings.

    A configuration is a dict mapping every name to a value (scalar choices) or
    a list of ``size`` values. Scalars may also be given as one-element lists,
    as Once-for-All and DyNAS-T write ``{"r": [224]}``.

    Subclasses may override :meth:`canonicalize` to map configurations that
    denote the same network (for example choices of skipped blocks) to one form.
    """

    _types: dict[str, type[SearchSpace]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        SearchSpace._types[cls.__name__] = cls

    def __init__(self, choices: Mapping[str, Choice]) -> None:
        if not choices:
            raise ValueError("a SearchSpace needs at least one choice")
        for name, choice in choices.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"choice names must be non-empty strings, got {name!r}")
            if not isinstance(choice, Choice):
                raise TypeError(f"choice {name!r} must be an elasticnas.Choice, got {type(choice).__name__}")
        self.choices: dict[str, Choice] = dict(choices)
        self._offsets: list[int] = []
        offset = 0
        for choice in self.choices.values():
            self._offsets.append(offset)
            offset += choice.length
        self._n_genes = offset

    # -- basic facts -----------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.choices)

    @property
    def n_genes(self) -> int:
        """Length of the integer gene vector (one index per position)."""
        return self._n_genes

    @property
    def cardinalities(self) -> np.ndarray:
        """Number of values allowed at each gene position."""
        return np.array(
            [len(c.values) for c in self.choices.values() for _ in range(c.length)], dtype=np.int64
        )

    @property
    def log10_size(self) -> float:
        """log10 of the number of distinct configurations (before canonicalisation)."""
        return float(sum(math.log10(len(c.values)) * c.length for c in self.choices.values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={c.values}x{c.size}" for n, c in self.choices.items())
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.choices == other.choices  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(tuple(self.choices.items()))

    # -- validation --------------------------------------------------------
    def validate(self, config: Mapping[str, Any]) -> Config:
        """Check ``config`` and return it in canonical form.

        Raises :class:`InvalidConfigError` naming the key, the position and
        the allowed values of the first problem found.
        """
        if not isinstance(config, Mapping):
            raise InvalidConfigError(f"a configuration must be a JSON object / dict, got {type(config).__name__}")
        unknown = [k for k in config if k not in self.choices]
        if unknown:
            raise InvalidConfigError(
                f"unknown key {unknown[0]!r} in configuration; expected keys: {', '.join(self.names)}"
            )
        out: Config = {}
        for name, choice in self.choices.items():
            if name not in config:
                raise InvalidConfigError(f"configuration is missing key {name!r}")
            value = config[name]
            if choice.size is None:
                if isinstance(value, list | tuple | np.ndarray):
                    if len(value) != 1:
                        raise InvalidConfigError(
                            f"key {name!r} takes one value (or a one-element list), got {len(value)} values"
                        )
                    value = value[0]
                out[name] = self._checked(name, None, choice, value)
            else:
                if not isinstance(value, list | tuple | np.ndarray):
                    raise InvalidConfigError(
                        f"key {name!r} takes a list of {choice.size} values, got {value!r}"
                    )
                if len(value) != choice.size:
                    raise InvalidConfigError(
                        f"key {name!r} takes a list of {choice.size} values, got {len(value)}"
                    )
                out[name] = [self._checked(name, i, choice, v) for i, v in enumerate(value)]
        return self.canonicalize(out)

    @staticmethod
    def _checked(name: str, position: int | None, choice: Choice, value: Any) -> Any:
        value = _plain(value)
        try:
            return choice.values[choice.index(value)]
        except ValueError:
            where = f"key {name!r}" if position is None else f"key {name!r} position {position}"
            allowed = ", ".join(map(repr, choice.values))
            raise InvalidConfigError(f"{where}: {value!r} is not allowed; allowed values: {allowed}") from None

    def contains(self, config: Mapping[str, Any]) -> bool:
        try:
            self.validate(config)
        except InvalidConfigError:
            return False
        return True

    def canonicalize(self, config: Config) -> Config:
        """Hook: map equivalent configurations to one form (identity by default)."""
        return config

    def config_id(self, config: Mapping[str, Any]) -> str:
        """A stable 16-hex-digit id; equal (canonical) configurations have equal ids."""
        text = json.dumps(self.validate(config), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # -- genes: the integer index vector ------------------------------------
    def to_genes(self, config: Mapping[str, Any]) -> np.ndarray:
        """Integer vector of value indices, one per position."""
        cfg = self.validate(config)
        genes = np.empty(self._n_genes, dtype=np.int64)
        for (name, choice), off in zip(self.choices.items(), self._offsets, strict=True):
            values = [cfg[name]] if choice.size is None else cfg[name]
            for i, v in enumerate(values):
                genes[off + i] = choice.index(v)
        return genes

    def from_genes(self, genes: Sequence[int] | np.ndarray) -> Config:
        """Inverse of :meth:`to_genes` (canonicalised)."""
        genes = np.asarray(genes)
        if genes.shape != (self._n_genes,):
            raise InvalidConfigError(f"expected {self._n_genes} genes, got shape {genes.shape}")
        out: Config = {}
        for (name, choice), off in zip(self.choices.items(), self._offsets, strict=True):
            idx = [int(g) for g in genes[off : off + choice.length]]
            for g in idx:
                if not 0 <= g < len(choice.values):
                    raise InvalidConfigError(f"gene {g} out of range for key {name!r}")
            vals = [choice.values[g] for g in idx]
            out[name] = vals[0] if choice.size is None else vals
        return self.canonicalize(out)

    # -- sampling and variation ------------------------------------------------
    def sample(self, seed: Seed = None) -> Config:
        """One uniformly random configuration."""
        rng = as_rng(seed)
        return self.from_genes(rng.integers(0, self.cardinalities))

    def sample_many(self, n: int, seed: Seed = None) -> list[Config]:
        rng = as_rng(seed)
        genes = rng.integers(0, self.cardinalities, size=(n, self._n_genes))
        return [self.from_genes(g) for g in genes]

    def mutate(self, config: Mapping[str, Any], prob: float | None = None, seed: Seed = None) -> Config:
        """Resample each position with probability ``prob`` (default 1/n_genes); at least one changes."""
        rng = as_rng(seed)
        genes = self.to_genes(config)
        card = self.cardinalities
        p = 1.0 / self._n_genes if prob is None else prob
        mask = (rng.random(self._n_genes) < p) & (card > 1)
        if not mask.any() and (card > 1).any():
            mask[rng.choice(np.flatnonzero(card > 1))] = True
        for i in np.flatnonzero(mask):
            others = [v for v in range(card[i]) if v != genes[i]]
            genes[i] = others[rng.integers(len(others))]
        return self.from_genes(genes)

    def crossover(self, a: Mapping[str, Any], b: Mapping[str, Any], seed: Seed = None) -> Config:
        """Uniform crossover: each position from ``a`` or ``b`` with equal probability."""
        rng = as_rng(seed)
        ga, gb = self.to_genes(a), self.to_genes(b)
        return self.from_genes(np.where(rng.random(self._n_genes) < 0.5, ga, gb))

    # -- numeric encodings --------------------------------------------------------
    def encode(
        self, configs: Mapping[str, Any] | Sequence[Mapping[str, Any]], kind: Literal["onehot", "ordinal"] = "onehot"
    ) -> np.ndarray:
        """Feature vector(s): ``onehot`` (one column per position and value) or
        ``ordinal`` (each position's value index scaled to [0, 1])."""
        single = isinstance(configs, Mapping)
        genes = np.stack([self.to_genes(c) for c in ([configs] if single else configs)])  # type: ignore[list-item]
        feats = self.encode_genes(genes, kind)
        return feats[0] if single else feats

    def encode_genes(self, genes: np.ndarray, kind: Literal["onehot", "ordinal"] = "onehot") -> np.ndarray:
        """Encode a (n, n_genes) integer gene matrix without building dicts."""
        genes = np.atleast_2d(genes)
        card = self.cardinalities
        if kind == "ordinal":
            return genes / np.maximum(card - 1, 1)
        if kind == "onehot":
            offsets = np.concatenate([[0], np.cumsum(card)[:-1]])
            out = np.zeros((genes.shape[0], int(card.sum())))
            rows = np.repeat(np.arange(genes.shape[0]), genes.shape[1])
            out[rows, (genes + offsets).ravel()] = 1.0
            return out
        raise ValueError(f"unknown encoding {kind!r}; use 'onehot' or 'ordinal'")

    # -- JSON -------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "choices": {n: c.to_json() for n, c in self.choices.items()}}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> SearchSpace:
        """Rebuild a space written by :meth:`to_json` (subclasses by their class name)."""
        space_type = SearchSpace._types.get(data.get("type", "SearchSpace"), SearchSpace)
        choices = {n: Choice(c["values"], size=c["size"]) for n, c in data["choices"].items()}
        return space_type(choices)

    def dumps(self, config: Mapping[str, Any]) -> str:
        """A configuration as compact JSON text (validated first)."""
        return json.dumps(self.validate(config), separators=(", ", ": "))

    def loads(self, text: str) -> Config:
        """Parse and validate a JSON configuration."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidConfigError(f"configuration is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        return self.validate(data)
