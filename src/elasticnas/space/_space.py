from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

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
    as Once-for-All and DyNAS-T write ``{"r": [224]}``. Its genes are the
    integer vector of value indices, one per position.

    Some genes may not change the network under others (the blocks a stage's
    depth skips): a subclass declares them with the one hook
    :meth:`inactive_mask`, and :meth:`validate`, :meth:`from_genes` and
    :meth:`canonical_genes` set them to their first value, so configurations
    of one network share one form and one config id. A subclass whose
    equivalent configurations differ in more than inactive genes (a projection
    onto a table) overrides :meth:`canonical_genes` instead.

    ``a * b`` is the :class:`ProductSpace` of two spaces with disjoint names.
    """

    _types: ClassVar[dict[str, type[SearchSpace]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "canonicalize" in cls.__dict__:
            raise TypeError(
                f"{cls.__name__}.canonicalize is no longer called: declare inactive genes with "
                "inactive_mask(genes), or override canonical_genes(genes)"
            )
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
        self._card = np.array([len(c.values) for c in self.choices.values() for _ in range(c.length)], dtype=np.int64)

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
        return self._card.copy()

    @property
    def log10_size(self) -> float:
        """log10 of the number of distinct configurations (before canonicalisation)."""
        return float(sum(math.log10(len(c.values)) * c.length for c in self.choices.values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={c.values}x{c.size}" for n, c in self.choices.items())
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and type(other) is type(self) and self.choices == other.choices

    def __hash__(self) -> int:
        return hash(tuple(self.choices.items()))

    def __mul__(self, other: SearchSpace) -> ProductSpace:
        """The product space: configurations carry the keys of both spaces (names must be disjoint)."""
        if not isinstance(other, SearchSpace):
            return NotImplemented
        return ProductSpace([self, other])

    # -- validation --------------------------------------------------------
    def validate(self, config: Mapping[str, Any]) -> Config:
        """Check ``config`` and return it in canonical form (inactive genes at their first value).

        Raises :class:`InvalidConfigError` naming the key, the position and
        the allowed values of the first problem found.
        """
        return self._decode(self.canonical_genes(self._parse(config))[0])

    def _check_keys(self, config: Mapping[str, Any]) -> None:
        if not isinstance(config, Mapping):
            raise InvalidConfigError(f"a configuration must be a JSON object / dict, got {type(config).__name__}")
        unknown = [k for k in config if k not in self.choices]
        if unknown:
            raise InvalidConfigError(
                f"unknown key {unknown[0]!r} in configuration; expected keys: {', '.join(self.names)}"
            )

    def _parse(self, config: Mapping[str, Any]) -> np.ndarray:
        """The genes of ``config`` as written (not canonicalised); raises on the first problem."""
        self._check_keys(config)
        genes: list[int] = []
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
                genes.append(self._index(name, None, choice, value))
            else:
                if not isinstance(value, list | tuple | np.ndarray):
                    raise InvalidConfigError(
                        f"key {name!r} takes a list of {choice.size} values, got {value!r}"
                    )
                if len(value) != choice.size:
                    raise InvalidConfigError(
                        f"key {name!r} takes a list of {choice.size} values, got {len(value)}"
                    )
                genes.extend(self._index(name, i, choice, v) for i, v in enumerate(value))
        return np.array(genes, dtype=np.int64)

    @staticmethod
    def _index(name: str, position: int | None, choice: Choice, value: Any) -> int:
        value = _plain(value)
        try:
            return choice.index(value)
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

    def config_id(self, config: Mapping[str, Any]) -> str:
        """A stable 16-hex-digit id; equal (canonical) configurations have equal ids."""
        text = json.dumps(self.validate(config), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # -- genes: the integer index vector ------------------------------------
    def inactive_mask(self, genes: np.ndarray) -> np.ndarray:
        """Hook: a boolean matrix shaped like the valid gene matrix ``genes`` (n, n_genes), True
        where a gene does not change the network of its row (default: every gene is active)."""
        return np.zeros(np.shape(genes), dtype=bool)

    def inactive_mask_within(self, genes: np.ndarray, product: ProductSpace, product_genes: np.ndarray) -> np.ndarray:
        """Hook for a part of ``product`` whose genes depend on other parts' (the precision of a layer that an
        architecture part skips): the inactive mask of its rows ``genes`` given the product's rows
        ``product_genes``; by default its own :meth:`inactive_mask`."""
        return self.inactive_mask(genes)

    def canonical_genes(self, genes: np.ndarray) -> np.ndarray:
        """Canonical rows of a valid gene matrix (n, n_genes) or row: inactive genes set to 0 (their
        first value). Equal networks get equal rows; always returns a new 2-D int64 matrix."""
        G = np.array(genes, dtype=np.int64, copy=True, ndmin=2)
        G[self.inactive_mask(G)] = 0
        return G

    def validate_genes(self, genes: np.ndarray) -> np.ndarray:
        """Check a gene matrix (n, n_genes) or row and return its canonical rows (2-D int64).

        Raises :class:`InvalidConfigError` naming the row, key and position of the first gene out of range.
        """
        G = np.asarray(genes)
        if G.ndim == 1:
            G = G[None, :]
        if G.ndim != 2 or G.shape[1] != self._n_genes:
            raise InvalidConfigError(f"expected {self._n_genes} genes, got shape {np.shape(genes)}")
        if G.dtype.kind not in "iu" and not (G.dtype.kind == "f" and np.array_equal(G, np.round(G))):
            raise InvalidConfigError(f"genes must be integers, got dtype {G.dtype}")
        bad = (G < 0) | (G >= self._card)
        if bad.any():
            row, col = (int(k) for k in np.argwhere(bad)[0])
            k = int(np.searchsorted(self._offsets, col, side="right")) - 1
            name, choice = self.names[k], self.choices[self.names[k]]
            where = f"key {name!r}" if choice.size is None else f"key {name!r} position {col - self._offsets[k]}"
            raise InvalidConfigError(
                f"row {row}: gene {G[row, col]} out of range for {where}; it takes 0..{len(choice.values) - 1}"
            )
        return self.canonical_genes(G)

    def to_genes(self, config: Mapping[str, Any]) -> np.ndarray:
        """Integer vector of value indices, one per position (canonical)."""
        genes: np.ndarray = self.canonical_genes(self._parse(config))[0]
        return genes

    def from_genes(self, genes: Sequence[int] | np.ndarray) -> Config:
        """Inverse of :meth:`to_genes` (canonicalised)."""
        genes = np.asarray(genes)
        if genes.ndim != 1:
            raise InvalidConfigError(f"expected {self._n_genes} genes, got shape {genes.shape}")
        return self._decode(self.validate_genes(genes)[0])

    def from_genes_many(self, genes: np.ndarray) -> list[Config]:
        """:meth:`from_genes` of every row of a gene matrix, validated and canonicalised in one batch."""
        return [self._decode(g) for g in self.validate_genes(genes)]

    def _decode(self, genes: np.ndarray) -> Config:
        """The configuration of a valid gene row."""
        g = genes.tolist()
        out: Config = {}
        for (name, choice), off in zip(self.choices.items(), self._offsets, strict=True):
            if choice.size is None:
                out[name] = choice.values[g[off]]
            else:
                out[name] = [choice.values[i] for i in g[off : off + choice.size]]
        return out

    # -- sampling and variation ------------------------------------------------
    def sample(self, seed: Seed = None) -> Config:
        """One uniformly random configuration."""
        rng = as_rng(seed)
        return self.from_genes(rng.integers(0, self._card))

    def sample_many(self, n: int, seed: Seed = None) -> list[Config]:
        rng = as_rng(seed)
        return self.from_genes_many(rng.integers(0, self._card, size=(n, self._n_genes)))

    def mutate(self, config: Mapping[str, Any], prob: float | None = None, seed: Seed = None) -> Config:
        """Resample each position with probability ``prob`` (default 1/n_genes); at least one changes."""
        rng = as_rng(seed)
        genes = self.to_genes(config)
        card = self._card
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
        """Feature vector(s) of configurations, as :meth:`encode_genes`."""
        rows = [configs] if isinstance(configs, Mapping) else list(configs)
        feats = self.encode_genes(np.stack([self.to_genes(c) for c in rows]), kind)
        return feats[0] if isinstance(configs, Mapping) else feats

    def encode_genes(self, genes: np.ndarray, kind: Literal["onehot", "ordinal"] = "onehot") -> np.ndarray:
        """Features of a valid (n, n_genes) gene matrix without building dicts: ``onehot`` (one column per
        position and value; the columns of inactive genes are all zero) or ``ordinal`` (each position's
        value index scaled to [0, 1])."""
        genes = np.atleast_2d(genes)
        card = self._card
        if kind == "ordinal":
            return genes / np.maximum(card - 1, 1)
        if kind == "onehot":
            offsets = np.concatenate([[0], np.cumsum(card)[:-1]])
            out = np.zeros((genes.shape[0], int(card.sum())))
            rows = np.repeat(np.arange(genes.shape[0]), genes.shape[1])
            out[rows, (genes + offsets).ravel()] = ~self.inactive_mask(genes).ravel()
            return out
        raise ValueError(f"unknown encoding {kind!r}; use 'onehot' or 'ordinal'")

    # -- JSON -------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "choices": {n: c.to_json() for n, c in self.choices.items()}}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> SearchSpace:
        """Rebuild a space written by :meth:`to_json` (subclasses by their class name)."""
        return SearchSpace._types.get(data.get("type", "SearchSpace"), SearchSpace)._from_json(data)

    @classmethod
    def _from_json(cls, data: Mapping[str, Any]) -> SearchSpace:
        return cls({n: Choice(c["values"], size=c["size"]) for n, c in data["choices"].items()})

    def dumps(self, config: Mapping[str, Any]) -> str:
        """A configuration as compact JSON text (validated first)."""
        return json.dumps(self.validate(config), separators=(", ", ": "))

    def loads(self, text: str) -> Config:
        """Parse and validate a JSON configuration."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
            raise InvalidConfigError(f"configuration is not valid JSON: {where}") from None
        return self.validate(data)


class ProductSpace(SearchSpace):
    """The product ``a * b * ...`` of spaces with disjoint choice names.

    A configuration is one flat dict holding the keys of every part; its genes
    and encodings are the parts' concatenated in order. Each part parses,
    canonicalises (its own :meth:`inactive_mask` or :meth:`canonical_genes`),
    encodes and identifies its own keys, so an architecture space, per-layer
    bit-widths and adapter ranks combine without knowing each other.
    ``(a * b) * c`` is the product of the three parts ``a, b, c``.
    """

    def __init__(self, parts: Sequence[SearchSpace]) -> None:
        flat = [q for p in parts for q in (p.parts if isinstance(p, ProductSpace) else (p,))]
        names: set[str] = set()
        for part in flat:
            shared = [n for n in part.names if n in names]
            if shared:
                raise ValueError(f"cannot multiply spaces that share choice names: {', '.join(shared)}")
            names.update(part.names)
        super().__init__({n: c for p in flat for n, c in p.choices.items()})
        self.parts: tuple[SearchSpace, ...] = tuple(flat)
        bounds = np.cumsum([0] + [p.n_genes for p in flat]).tolist()
        self._slices = [slice(a, b) for a, b in itertools.pairwise(bounds)]

    def __repr__(self) -> str:
        return " * ".join(map(repr, self.parts))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProductSpace) and self.parts == other.parts

    def __hash__(self) -> int:
        return hash(self.parts)

    def split(self, config: Mapping[str, Any]) -> list[Config]:
        """Each part's configuration, validated by its part."""
        self._check_keys(config)
        return [p.validate(self._keys_of(p, config)) for p in self.parts]

    @staticmethod
    def _keys_of(part: SearchSpace, config: Mapping[str, Any]) -> dict[str, Any]:
        return {n: config[n] for n in part.choices if n in config}

    def _parse(self, config: Mapping[str, Any]) -> np.ndarray:
        self._check_keys(config)
        return np.concatenate([p._parse(self._keys_of(p, config)) for p in self.parts])

    def config_id(self, config: Mapping[str, Any]) -> str:
        """Hash of the parts' config ids (of the canonical configuration): configurations of equal parts share it."""
        cfg = self.validate(config)
        ids = [p.config_id(self._keys_of(p, cfg)) for p in self.parts]
        return hashlib.sha256(",".join(ids).encode()).hexdigest()[:16]

    def inactive_mask(self, genes: np.ndarray) -> np.ndarray:
        G = np.atleast_2d(genes)
        return np.hstack(
            [p.inactive_mask_within(G[:, s], self, G) for p, s in zip(self.parts, self._slices, strict=True)]
        )

    def canonical_genes(self, genes: np.ndarray) -> np.ndarray:
        """Each part's canonical rows, then the genes that other parts make inactive set to 0."""
        G = np.array(genes, dtype=np.int64, ndmin=2)
        G = np.hstack([p.canonical_genes(G[:, s]) for p, s in zip(self.parts, self._slices, strict=True)])
        G[self.inactive_mask(G)] = 0
        return G

    def validate_genes(self, genes: np.ndarray) -> np.ndarray:
        G = np.asarray(genes)
        if G.ndim == 1:
            G = G[None, :]
        if G.ndim != 2 or G.shape[1] != self._n_genes:
            raise InvalidConfigError(f"expected {self._n_genes} genes, got shape {np.shape(genes)}")
        G = np.hstack([p.validate_genes(G[:, s]) for p, s in zip(self.parts, self._slices, strict=True)])
        G[self.inactive_mask(G)] = 0
        return G

    def from_genes_many(self, genes: np.ndarray) -> list[Config]:
        """:meth:`from_genes` of every row of a gene matrix, validated and canonicalised in one batch."""
        return [self._decode(g) for g in self.validate_genes(genes)]

    def _decode(self, genes: np.ndarray) -> Config:
        out: Config = {}
        for p, s in zip(self.parts, self._slices, strict=True):
            out.update(p._decode(genes[s]))
        return out

    def encode_genes(self, genes: np.ndarray, kind: Literal["onehot", "ordinal"] = "onehot") -> np.ndarray:
        G = np.atleast_2d(genes)
        return np.hstack([p.encode_genes(G[:, s], kind) for p, s in zip(self.parts, self._slices, strict=True)])

    def to_json(self) -> dict[str, Any]:
        return {"type": "ProductSpace", "parts": [p.to_json() for p in self.parts]}

    @classmethod
    def _from_json(cls, data: Mapping[str, Any]) -> SearchSpace:
        return cls([SearchSpace.from_json(p) for p in data["parts"]])
