"""Elastic super-networks over transformers models: :class:`HFSupernet` and the standalone sub-networks."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import Tensor, nn

from elasticnas.space import Choice, Config
from elasticnas.supernets.base import Supernet
from elasticnas.supernets.hf._families import Dims, Family, LayerRole, Task, family_of, infer_task, task_of
from elasticnas.supernets.hf._modules import (
    ElasticLayerList,
    ElasticLinear,
    ElasticOutput,
    Index,
    blocks_of,
    linear_axes,
    module_at,
    norm_mixin,
    swap,
    take,
)
from elasticnas.supernets.hf._space import TransformerSpace

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from elasticnas.measure.accuracy import Calibration

FAMILY = "hf"  # the sub-network builder's name (Supernet.family)
INFO_FILE = "elasticnas.json"  # the super-network's layer ranking, task and space options, beside the HF files
_INFO_FORMAT = "elasticnas-hf-supernet"
AUTO_CLASSES: dict[Task, str] = {
    "causal-lm": "AutoModelForCausalLM",
    "sequence-classification": "AutoModelForSequenceClassification",
    "image-classification": "AutoModelForImageClassification",
}
FRACTIONS = (0.25, 0.5, 0.75, 1.0)  # default heads and FFN choices, of the maximum
HIDDEN_FRACTIONS = (0.5, 0.75, 1.0)  # default hidden sizes, of the maximum (rounded to head_dim multiples)
MAX_SEQ_LEN = 128  # default sequence length of example_inputs
PROCESSOR_FILES = (  # tokenizer and image-processor files an exported sub-network takes from the super-network's folder
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "tokenizer.model",
    "vocab.json", "vocab.txt", "merges.txt", "chat_template.jinja", "preprocessor_config.json", "processor_config.json",
)  # fmt: skip


def auto_class(task: Task) -> Any:
    """The ``transformers.AutoModelFor*`` class of ``task``."""
    import transformers

    return getattr(transformers, AUTO_CLASSES[task])


def run(model: nn.Module, task: Task, inputs: Sequence[Tensor]) -> Tensor:
    """The logits of a transformers model of ``task`` on ``inputs`` as :meth:`HFSupernet.example_inputs` gives them."""
    if task == "image-classification":
        out = model(pixel_values=inputs[0])
    elif task == "sequence-classification":
        out = model(input_ids=inputs[0], attention_mask=inputs[1] if len(inputs) > 1 else None)
    else:  # an explicit mask: without one transformers looks for packed sequences (torch.diff, not ONNX-exportable)
        out = model(input_ids=inputs[0], attention_mask=torch.ones_like(inputs[0]), use_cache=False)
    return cast(Tensor, out.logits)


@dataclass(frozen=True)
class Plan:
    """A sub-network: hidden size, the blocks kept (original indices, in order), their heads and FFN widths."""

    hidden: int
    layers: tuple[int, ...]
    heads: tuple[int, ...]
    ffn: tuple[int, ...]


def role_shape(role: LayerRole, dims: Dims, heads: int, ffn: int, hidden: int) -> tuple[int, int]:
    """(out, in) features of a block's linear of ``role`` with ``heads`` query heads and ``ffn`` neurons."""
    q = heads * dims.head_dim
    kv = (dims.kv_heads if dims.gqa else heads) * dims.head_dim
    return {
        "q": (q, hidden),
        "k": (kv, hidden),
        "v": (kv, hidden),
        "qkv": (3 * q, hidden),
        "o": (hidden, q),
        "up": (ffn, hidden),
        "down": (hidden, ffn),
    }[role]


def head_attr_values(dims: Dims, heads: int) -> dict[str, int]:
    """Values of the attention attributes (:data:`~._families.HeadAttr`) for ``heads`` query heads."""
    return {"heads": heads, "width": heads * dims.head_dim, "groups": heads // dims.kv_heads if dims.gqa else 1}


class HFSubnet(nn.Module):
    """A standalone sub-network: ``forward(*inputs)`` returns the logits of :attr:`hf_model`, a transformers model."""

    def __init__(self, hf_model: PreTrainedModel, task: Task) -> None:
        super().__init__()
        self.hf_model = hf_model
        self.task: Task = task

    def forward(self, *inputs: Tensor) -> Tensor:
        return run(self.hf_model, self.task, inputs)


def is_uniform_arch(arch: Mapping[str, Any]) -> bool:
    """Whether a transformers config describes sub-network ``arch`` exactly (all blocks of one shape)."""
    fam = family_of(arch["config"]["model_type"], arch["task"])
    heads, kv, ffn = set(arch["heads"]), set(arch["kv_heads"]), set(arch["ffn"])
    if len(heads) != 1 or len(kv) != 1 or len(ffn) != 1:
        return False
    return fam.config_head_dim or arch["hidden"] == arch["heads"][0] * arch["head_dim"]


def build_hf_subnet(arch: Mapping[str, Any]) -> HFSubnet:
    """The sub-network :meth:`HFSupernet.arch` describes, as a fresh transformers model (weights random).

    The config gets the kept depth, the hidden size and the first block's heads and FFN width;
    blocks of other shapes get resized linear modules and attention attributes. When
    :func:`is_uniform_arch` holds, the config alone describes the model, so ``save_pretrained``
    and ``AutoModelFor*.from_pretrained`` round-trip it.
    """
    from transformers import AutoConfig

    base = dict(arch["config"])
    task: Task = arch["task"]
    fam = family_of(base["model_type"], task)
    layers, hidden, head_dim = list(arch["layers"]), int(arch["hidden"]), int(arch["head_dim"])
    heads, kv_heads, ffns = list(arch["heads"]), list(arch["kv_heads"]), list(arch["ffn"])
    config = AutoConfig.for_model(**base)
    config.num_hidden_layers = len(layers)
    config.hidden_size = hidden
    if isinstance(base.get("layer_types"), list):
        config.layer_types = [base["layer_types"][i] for i in layers]
    if fam.config_head_dim:
        config.head_dim = head_dim
        config.num_attention_heads = heads[0]
    else:
        config.num_attention_heads = heads[0] if is_uniform_arch(arch) else hidden // head_dim
    if "num_key_value_heads" in base:
        config.num_key_value_heads = kv_heads[0]
    setattr(config, fam.ffn_key, ffns[0])
    model = auto_class(task).from_config(config, attn_implementation=arch["attn_implementation"])
    for block, k, kv, f in zip(model.get_submodule(fam.layers), heads, kv_heads, ffns, strict=True):
        layer_dims = Dims(hidden, 1, k, kv, head_dim, f)
        for path, role in fam.linears:
            old = block.get_submodule(path)
            out, inp = role_shape(role, layer_dims, k, f, hidden)
            if old.weight.shape[linear_axes(old)[0]] != out or old.weight.shape[linear_axes(old)[1]] != inp:
                parent, _, name = path.rpartition(".")
                setattr(block.get_submodule(parent), name, _resized(old, out, inp))
        attention = block.get_submodule(fam.attention)
        values = head_attr_values(layer_dims, k)
        for attr, kind in fam.head_attrs:
            setattr(attention, attr, values[kind])
    return HFSubnet(model.eval(), task)


def _resized(old: nn.Module, out: int, inp: int) -> nn.Module:
    """A fresh linear module like ``old`` with ``out`` x ``inp`` features."""
    from transformers.pytorch_utils import Conv1D

    if isinstance(old, Conv1D):
        return Conv1D(out, inp)  # type: ignore[no-untyped-call]  # transformers' Conv1D.__init__ is unannotated
    return nn.Linear(inp, out, bias=old.bias is not None)


class HFSupernet(Supernet):
    """An elastic transformer over a transformers model whose weights it slices at forward time.

    The model's linear, norm and embedding modules become elastic subclasses (same state-dict
    keys, see :mod:`~elasticnas.supernets.hf._modules`); any configuration of
    :attr:`search_space` (a :class:`TransformerSpace`) runs by slicing: the ``depth`` blocks
    ranked first in :attr:`layer_order`, ``heads`` query heads (the first ones of each key-value
    group with GQA; key-value heads stay) and ``ffn`` FFN neurons per block, and the first
    ``hidden`` channels of the residual stream (norms over those channels, head_dim unchanged).
    Slices take the first units: :func:`~elasticnas.supernets.hf.elasticize` sorts them by
    importance first. The model runs eager attention, whose matrix products the MAC counters see.

    ``per_layer``: heads and FFN width chosen per block, else shared; ``depths``, ``heads``,
    ``ffn`` and ``hidden`` override the default choices (about half to all blocks, 1/4 to all
    of the heads and FFN neurons, 1/2 to all of the hidden size). ``seq_len``: the sequence
    length of :meth:`example_inputs` and :meth:`costs` (default ``min(128, max positions)``).
    """

    family = FAMILY

    def __init__(
        self,
        model: PreTrainedModel,
        *,
        task: Task | None = None,
        layer_order: Sequence[int] | None = None,
        method: str = "first-k",
        per_layer: bool = True,
        depths: Sequence[int] | None = None,
        heads: Sequence[int] | None = None,
        ffn: Sequence[int] | None = None,
        hidden: Sequence[int] | None = None,
        seq_len: int | None = None,
    ) -> None:
        super().__init__()
        config = model.config
        self.task: Task = task or task_of(model)
        self.spec: Family = family_of(config.model_type, self.task)
        self.dims = dims = Dims.of(config, self.spec)
        if getattr(config, "scale_attn_by_inverse_layer_idx", False) or getattr(config, "add_cross_attention", False):
            raise ValueError("blocks must not depend on their index (scale_attn_by_inverse_layer_idx) or cross-attend")
        model.set_attn_implementation("eager")
        self.model = model
        self.method = method
        self.layer_order = tuple(range(dims.layers)) if layer_order is None else tuple(int(i) for i in layer_order)
        options: dict[str, Any] = {
            "per_layer": per_layer,
            "depths": _checked("depths", depths, _default_depths(dims), 1, dims.layers, 1),
            "heads": _checked("heads", heads, _default_heads(dims), dims.head_unit, dims.heads, dims.head_unit),
            "ffn": _checked("ffn", ffn, _fractions(dims.ffn, 1, FRACTIONS), 1, dims.ffn, 1),
            "hidden": _checked(
                "hidden", hidden, _fractions(dims.hidden, dims.head_dim, HIDDEN_FRACTIONS), 1, dims.hidden,
                1 if self.spec.config_head_dim else dims.head_dim,
            ),
        }  # fmt: skip
        self.space_options = options
        size = dims.layers if per_layer else None
        self.search_space = TransformerSpace(
            {
                "depth": Choice(options["depths"]),
                "heads": Choice(options["heads"], size=size),
                "ffn": Choice(options["ffn"], size=size),
                "hidden": Choice(options["hidden"]),
            },
            self.layer_order,
        )
        if self.task == "image-classification":
            self.seq_len = (int(config.image_size) // int(config.patch_size)) ** 2 + 1
        else:
            self.seq_len = seq_len or min(MAX_SEQ_LEN, int(config.max_position_embeddings))
        self._make_elastic()
        self.eval()

    # -- structure -------------------------------------------------------------------
    def _blocks(self) -> list[nn.Module]:
        return blocks_of(self.model, self.spec.layers)

    def _make_elastic(self) -> None:
        blocks = self.model.get_submodule(self.spec.layers)
        if type(blocks) is not nn.ModuleList:
            raise TypeError(f"{self.spec.layers} is a {type(blocks).__name__}, not an nn.ModuleList")
        blocks.__class__ = ElasticLayerList
        for block in self._blocks():
            for path, _ in self.spec.linears:
                swap(block.get_submodule(path), ElasticLinear)
            for path in self.spec.norms:
                norm = block.get_submodule(path)
                swap(norm, norm_mixin(norm))
        for path, kind in self.spec.globals:
            module = self.model.get_submodule(path)
            if kind in ("embed", "embeddings"):
                swap(module, ElasticOutput)
            elif kind == "norm":
                swap(module, norm_mixin(module))
            elif kind in ("head", "pooler"):
                swap(module, ElasticLinear)
            # "patch": runs whole inside the output-sliced embeddings

    def plan(self, config: Mapping[str, Any]) -> Plan:
        """The blocks and sizes of (valid) configuration ``config``."""
        layers = cast(TransformerSpace, self.search_space).active_layers(config)

        def per_block(name: str) -> tuple[int, ...]:
            value = config[name]
            return (
                tuple(int(value[i]) for i in layers) if isinstance(value, list | tuple) else (int(value),) * len(layers)
            )

        return Plan(int(config["hidden"]), layers, per_block("heads"), per_block("ffn"))

    def _head_index(self, heads: int) -> Index:
        """The query-head channels of the first ``heads`` heads (with GQA: the first of each group)."""
        d = self.dims
        if heads == d.heads:
            return None
        if not d.gqa:
            return heads * d.head_dim
        per_group, group = heads // d.kv_heads, d.heads // d.kv_heads
        kept = torch.arange(d.kv_heads)[:, None] * group + torch.arange(per_group)[None, :]
        return (kept.reshape(-1, 1) * d.head_dim + torch.arange(d.head_dim)[None, :]).reshape(-1)

    def _role_index(self, role: LayerRole, heads: int, ffn: int, hidden: int) -> tuple[Index, Index]:
        """(output, input) indices of a block's linear of ``role``."""
        d = self.dims
        h = None if hidden == d.hidden else hidden
        f = None if ffn == d.ffn else ffn
        q = self._head_index(heads)
        if role == "qkv":
            if q is None:
                return None, h
            width = d.heads * d.head_dim
            return torch.cat([torch.arange(cast(int, q)) + s * width for s in range(3)]), h
        kv = None if self.dims.gqa else q
        return {"q": (q, h), "k": (kv, h), "v": (kv, h), "o": (h, q), "up": (f, h), "down": (h, f)}[role]

    # -- Supernet hooks ---------------------------------------------------------------
    def _activate(self, config: Config) -> None:
        plan = self.plan(config)
        blocks = cast(ElasticLayerList, self.model.get_submodule(self.spec.layers))
        blocks.active = None if len(plan.layers) == self.dims.layers else plan.layers
        h = None if plan.hidden == self.dims.hidden else plan.hidden
        for path, kind in self.spec.globals:
            if kind in ("embed", "embeddings"):
                cast(ElasticOutput, self.model.get_submodule(path)).elastic_out = h
            elif kind in ("head", "pooler"):
                linear = cast(ElasticLinear, self.model.get_submodule(path))
                linear.elastic_in = h
                linear.elastic_out = h if kind == "pooler" else None
        all_blocks = self._blocks()
        for i, heads, ffn in zip(plan.layers, plan.heads, plan.ffn, strict=True):
            block = all_blocks[i]
            for path, role in self.spec.linears:
                linear = cast(ElasticLinear, block.get_submodule(path))
                linear.elastic_out, linear.elastic_in = self._role_index(role, heads, ffn, plan.hidden)
            attention = block.get_submodule(self.spec.attention)
            values = head_attr_values(self.dims, heads)
            for attr, value in self.spec.head_attrs:
                setattr(attention, attr, values[value])

    def forward(self, *inputs: Tensor) -> Tensor:
        self.active_config  # noqa: B018 - activates the largest sub-network on first use
        return run(self.model, self.task, inputs)

    def _arch(self, config: Config) -> dict[str, Any]:
        plan = self.plan(config)
        d = self.dims
        return {
            "name": FAMILY,
            "task": self.task,
            "config": self.model.config.to_dict(),
            "attn_implementation": "eager",
            "hidden": plan.hidden,
            "head_dim": d.head_dim,
            "layers": list(plan.layers),
            "heads": list(plan.heads),
            "kv_heads": [d.kv_heads if d.gqa else k for k in plan.heads],
            "ffn": list(plan.ffn),
        }

    def is_uniform(self, config: Mapping[str, Any]) -> bool:
        """Whether the extracted ``hf_model``'s config alone describes sub-network ``config`` (all kept blocks of
        one shape, and for GPT-2 / BERT hidden = heads x head_dim): ``save_pretrained`` then round-trips it."""
        return is_uniform_arch(self.arch(config))

    def _extract(self, config: Config) -> nn.Module:
        sub = build_hf_subnet(self._arch(config))
        plan = self.plan(config)
        prefix = self.spec.layers + "."
        indices: dict[str, tuple[Index, Index]] = {}
        for i, heads, ffn in zip(plan.layers, plan.heads, plan.ffn, strict=True):
            for path, role in self.spec.linears:
                indices[f"{prefix}{i}.{path}"] = self._role_index(role, heads, ffn, plan.hidden)
        own = self.model.state_dict()
        state = {}
        for key, target in sub.hf_model.state_dict().items():
            src = key
            if key.startswith(prefix):
                pos, rest = key[len(prefix) :].split(".", 1)
                src = f"{prefix}{plan.layers[int(pos)]}.{rest}"
            t = own[src]
            owner, _, name = src.rpartition(".")
            if owner in indices:
                out_index, in_index = indices[owner]
                out_axis, in_axis = linear_axes(self.model.get_submodule(owner))
                t = take(t, 0, out_index) if name == "bias" else take(take(t, out_axis, out_index), in_axis, in_index)
            state[key] = t[tuple(slice(0, n) for n in target.shape)].clone()  # the rest: the first channels
        sub.hf_model.load_state_dict(state)
        return sub

    def costs(self, config: Mapping[str, Any], *, seq_len: int | None = None) -> dict[str, int]:
        """Exact ``{"macs", "params", "params_non_embedding"}`` of sub-network ``config``, counted
        analytically; MACs for one sequence of ``seq_len`` tokens (default :attr:`seq_len`; images: the
        model's patches)."""
        return self._costs_at(self.search_space.validate(config), seq_len)

    def _costs(self, config: Config) -> dict[str, int]:
        return self._costs_at(config, None)

    def _costs_at(self, config: Config, seq_len: int | None) -> dict[str, int]:
        """Exact MACs of all matrix products on one input of :meth:`example_inputs` and parameter counts.

        Per block with ``T`` tokens, hidden ``h``, ``k`` query heads of ``head_dim`` (``k*hd``
        channels), key-value channels ``kv``, FFN width ``f``: projections ``T*h*(2*k*hd + 2*kv)``,
        attention scores and weighted values ``2*T*T*k*hd`` (all T x T entries, as computed),
        FFN ``T*h*f`` per input projection (two for gated MLPs) plus ``T*f*h``; then the LM head
        ``T*h*vocab`` or the classifier (and BERT's pooler, ``h*h``) on one token, and ViT's patch
        projection. These are half of the forward FLOPs of Hoffmann et al. 2022 (Chinchilla),
        Appendix F, without the softmax and embedding-lookup terms (cf. Kaplan et al. 2020, Table 1).
        ``params_non_embedding`` leaves out the token / position embedding tables and a
        language model's output head (tied or not), as Kaplan et al. do.
        """
        plan, d = self.plan(config), self.dims
        T = self.seq_len if seq_len is None or self.task == "image-classification" else int(seq_len)
        h = plan.hidden
        macs = params = embedding = 0
        blocks = self._blocks()
        for i, heads, ffn in zip(plan.layers, plan.heads, plan.ffn, strict=True):
            for path, role in self.spec.linears:
                out, inp = role_shape(role, d, heads, ffn, h)
                params += out * inp + (out if module_at(blocks[i], path).bias is not None else 0)
                macs += T * out * inp
            params += sum(h * _affine(blocks[i].get_submodule(path)) for path in self.spec.norms)
            macs += 2 * T * T * heads * d.head_dim
        embed_weights = [module_at(self.model, p).weight for p in self.spec.paths("embed")]
        for path, kind in self.spec.globals:
            module = module_at(self.model, path)
            if kind == "embed":
                n = int(module.num_embeddings) * h
                params, embedding = params + n, embedding + n
            elif kind == "embeddings":  # ViT's CLS token and position embeddings
                n = sum(p.numel() // d.hidden * h for p in module.parameters(recurse=False))
                params, embedding = params + n, embedding + n
            elif kind == "patch":
                per = module.weight[0].numel()
                params += h * per + (h if module.bias is not None else 0)
                macs += (T - 1) * h * per
            elif kind == "norm":
                params += h * _affine(module)
            elif kind == "pooler":
                params += h * h + (h if module.bias is not None else 0)
                macs += h * h
            elif kind == "head":
                out = int(module.weight.shape[0])
                n = (
                    0
                    if any(module.weight is w for w in embed_weights)
                    else out * h + (out if module.bias is not None else 0)
                )
                params += n
                if self.task == "causal-lm":
                    embedding += n
                macs += (T if self.task == "causal-lm" else 1) * h * out
        return {"macs": macs, "params": params, "params_non_embedding": params - embedding}

    def _calibrate(self, module: nn.Module, config: Config, calibration: Calibration) -> int:
        return 0  # no BatchNorm statistics

    def example_inputs(
        self, config: Mapping[str, Any], batch_size: int = 1, *, seed: int = 0, seq_len: int | None = None
    ) -> tuple[Tensor, ...]:
        """Seeded inputs: token ids (N, seq_len) (and an attention mask, valid prefixes of random lengths, for
        sequence classification) or standard-normal images (N, C, H, W)."""
        self.search_space.validate(config)
        gen = torch.Generator().manual_seed(seed)
        cfg = self.model.config
        if self.task == "image-classification":
            size = int(cfg.image_size)
            return (torch.randn((batch_size, int(cfg.num_channels), size, size), generator=gen),)
        T = seq_len or self.seq_len
        ids = torch.randint(0, int(cfg.vocab_size), (batch_size, T), generator=gen)
        if self.task == "causal-lm":
            return (ids,)
        lengths = torch.randint(1, T + 1, (batch_size, 1), generator=gen)
        return ids, (torch.arange(T)[None, :] < lengths).long()

    # -- files ----------------------------------------------------------------------------
    def save_subnet_pretrained(self, config: Mapping[str, Any], sub: nn.Module, directory: str) -> None:
        """Write ``sub`` (sub-network ``config`` as :meth:`extract` gave it) as a Hugging Face folder, with the
        tokenizer / image processor files of the model's source folder; ``config`` must be :meth:`is_uniform`."""
        from elasticnas.export import ExportError

        if not self.is_uniform(config) or not isinstance(sub, HFSubnet):
            raise ExportError(
                "only sub-networks whose kept blocks share one shape (and, for GPT-2 and BERT, hidden = heads x "
                "head_dim) have a Hugging Face config; export this one as pt or safetensors"
            )
        sub.hf_model.save_pretrained(directory)
        self._copy_processor_files(directory)

    def _copy_processor_files(self, directory: str | os.PathLike[str]) -> None:
        """Copy the tokenizer / image processor files of the model's source folder (if any) into ``directory``."""
        source = str(getattr(self.model, "name_or_path", ""))
        if source and os.path.isdir(source) and os.path.abspath(source) != os.path.abspath(directory):
            for name in PROCESSOR_FILES:
                if os.path.isfile(os.path.join(source, name)):
                    shutil.copyfile(os.path.join(source, name), os.path.join(directory, name))

    def _convert_state_dict(self, state_dict: Mapping[str, Any]) -> dict[str, Any]:
        """A transformers model's own state dict (a ``model.safetensors``) as this module's: keys under
        ``model.``, tied weights (which transformers saves once) filled in from the tensor they share."""
        own = self.state_dict()
        state = dict(state_dict)
        if not state or any(k in own for k in state) or not all(f"model.{k}" in own for k in state):
            return state  # this module's own keys: loaded strictly as they are
        state = {f"model.{k}": v for k, v in state.items()}
        by_storage = {own[k].data_ptr(): k for k in state}
        for key, tensor in own.items():
            if key not in state and tensor.data_ptr() in by_storage:
                state[key] = state[by_storage[tensor.data_ptr()]]
        return state

    def recipe(self) -> dict[str, Any]:
        """The base recipe; a Hugging Face folder (``hf:PATH``) also records its task."""
        recipe = super().recipe()
        if self.name.startswith("hf:"):
            recipe["options"] = {"task": self.task}
        return recipe

    def save_pretrained(self, directory: str | os.PathLike[str]) -> None:
        """Write the (permuted) model as a Hugging Face folder plus ``elasticnas.json`` (layer ranking, task, space),
        with the tokenizer / image processor files of the model's source folder."""
        self.model.save_pretrained(directory)
        self._copy_processor_files(directory)
        info = {
            "format": _INFO_FORMAT,
            "version": 1,
            "task": self.task,
            "method": self.method,
            "layer_order": list(self.layer_order),
            "space": self.space_options,
        }
        with open(os.path.join(directory, INFO_FILE), "w", encoding="utf-8") as fh:
            json.dump(info, fh, indent=1)


def _affine(norm: nn.Module) -> int:
    """Parameters per channel of a norm: weight, and bias if any."""
    return 1 + (getattr(norm, "bias", None) is not None)


def _fractions(full: int, step: int, fractions: Sequence[float]) -> list[int]:
    """Distinct multiples of ``step`` near ``fractions`` of ``full`` (at least ``step``)."""
    return sorted({max(step, round(f * full / step) * step) for f in fractions})


def _default_depths(dims: Dims) -> list[int]:
    return list(range(max(1, math.ceil(dims.layers / 2)), dims.layers + 1))


def _default_heads(dims: Dims) -> list[int]:
    unit = dims.head_unit
    return [unit * k for k in _fractions(dims.heads // unit, 1, FRACTIONS)]


def _checked(name: str, values: Sequence[int] | None, default: list[int], low: int, high: int, step: int) -> list[int]:
    """The sorted choices ``values`` (or ``default``), each a multiple of ``step`` in [low, high]."""
    out = default if values is None else sorted({int(v) for v in values})
    bad = [v for v in out if not low <= v <= high or v % step]
    if not out or bad:
        raise ValueError(f"{name} choices must be multiples of {step} in [{low}, {high}], got {list(out)}")
    return out


def load_hf_supernet(
    path: str | os.PathLike[str], *, task: Task | None = None, pretrained: bool = True, **options: Any
) -> HFSupernet:
    """The super-network of a Hugging Face folder: ranked and sorted when :meth:`HFSupernet.save_pretrained`
    wrote it (its ``elasticnas.json``), else (any other folder, an exported sub-network too) in the natural
    (first-k) order. ``task`` defaults to the recorded one or the config's ``architectures``; ``options``
    override the recorded space options (see :class:`HFSupernet`). ``pretrained=False`` builds the
    folder's architecture with transformers' random initialisation (seed it with ``torch.manual_seed``)
    instead of reading its weights."""
    from transformers import AutoConfig

    src = os.fspath(path)
    info: dict[str, Any] = {}
    if os.path.exists(os.path.join(src, INFO_FILE)):
        with open(os.path.join(src, INFO_FILE), encoding="utf-8") as fh:
            info = json.load(fh)
        if info.get("format") != _INFO_FORMAT:  # e.g. an exported sub-network: a plain model
            info = {}
    task = task or info.get("task") or infer_task(AutoConfig.from_pretrained(src).architectures)
    model = auto_class(task).from_pretrained(src) if pretrained else auto_class(task).from_config(
        AutoConfig.from_pretrained(src)
    )
    net = HFSupernet(
        model, task=task, layer_order=info.get("layer_order"), method=info.get("method", "first-k"),
        **{**info.get("space", {}), **options},
    )  # fmt: skip
    return net  # weights_source None: create_supernet("hf:" + path) gives these weights again


def load_hf_subnet(path: str | os.PathLike[str], *, task: Task | None = None) -> HFSubnet:
    """A Hugging Face folder (an ``hf`` export) as an :class:`HFSubnet` returning logits (eager attention)."""
    from transformers import AutoConfig

    src = os.fspath(path)
    task = task or infer_task(AutoConfig.from_pretrained(src).architectures)
    return HFSubnet(auto_class(task).from_pretrained(src, attn_implementation="eager").eval(), task)
