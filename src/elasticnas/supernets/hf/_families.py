"""Where each supported transformers model family keeps its parts: one :class:`Family` record per family.

Everything family-specific lives in :data:`FAMILIES` (module paths relative to the model root
or to one layer, the role of every linear layer, the attention attributes that follow the head
count, config key names); the elastic, extraction, cost and importance code reads only these records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Task = Literal["causal-lm", "sequence-classification", "image-classification"]
TASKS: tuple[Task, ...] = ("causal-lm", "sequence-classification", "image-classification")

# roles of a layer's linear modules: what their output and input axes index
#   q, k, v: (query / key-value head channels, hidden); qkv: q, k and v fused along the output
#   o: (hidden, query head channels); up: (FFN neurons, hidden); down: (hidden, FFN neurons)
LayerRole = Literal["q", "k", "v", "qkv", "o", "up", "down"]
# roles of the modules outside the layers
#   embed: an nn.Embedding (columns = hidden); embeddings: a module whose output and own parameters'
#   last axis are hidden (ViT's CLS token and position embeddings); patch: a Conv2d whose output
#   channels are hidden; norm: LayerNorm / RMSNorm over hidden; head: a linear layer reading hidden;
#   pooler: a linear layer hidden -> hidden on the first token
GlobalRole = Literal["embed", "embeddings", "patch", "norm", "head", "pooler"]
# attention attributes that follow the active heads: heads (query heads), width (heads * head_dim),
# groups (query heads per key-value head)
HeadAttr = Literal["heads", "width", "groups"]


@dataclass(frozen=True)
class Family:
    """The layout of one transformers model family (paths are ``get_submodule`` paths)."""

    name: str
    model_types: tuple[str, ...]  # config.model_type values this record serves
    task: Task
    layers: str  # the nn.ModuleList of blocks, from the model root
    attention: str  # the attention module, relative to a block
    linears: tuple[tuple[str, LayerRole], ...]  # linear modules of a block (relative path, role)
    norms: tuple[str, ...]  # norms of a block (relative paths)
    globals: tuple[tuple[str, GlobalRole], ...]  # modules outside the blocks (path, role)
    head_attrs: tuple[tuple[str, HeadAttr], ...]  # attention attributes set from the active heads
    ffn_key: str = "intermediate_size"  # the config key of the FFN width
    config_head_dim: bool = True  # the modules read config.head_dim (else head_dim = hidden_size // heads)

    def paths(self, role: str) -> list[str]:
        """The paths of the block linears or global modules of ``role``."""
        return [p for p, r in (*self.linears, *self.globals) if r == role]


FAMILIES: tuple[Family, ...] = (
    Family(
        name="gpt2",
        model_types=("gpt2",),
        task="causal-lm",
        layers="transformer.h",
        attention="attn",
        linears=(("attn.c_attn", "qkv"), ("attn.c_proj", "o"), ("mlp.c_fc", "up"), ("mlp.c_proj", "down")),
        norms=("ln_1", "ln_2"),
        globals=(
            ("transformer.wte", "embed"),
            ("transformer.wpe", "embed"),
            ("transformer.ln_f", "norm"),
            ("lm_head", "head"),
        ),
        head_attrs=(("num_heads", "heads"), ("split_size", "width")),
        ffn_key="n_inner",
        config_head_dim=False,
    ),
    Family(
        name="llama",
        model_types=("llama", "mistral", "qwen2"),
        task="causal-lm",
        layers="model.layers",
        attention="self_attn",
        linears=(
            ("self_attn.q_proj", "q"),
            ("self_attn.k_proj", "k"),
            ("self_attn.v_proj", "v"),
            ("self_attn.o_proj", "o"),
            ("mlp.gate_proj", "up"),
            ("mlp.up_proj", "up"),
            ("mlp.down_proj", "down"),
        ),
        norms=("input_layernorm", "post_attention_layernorm"),
        globals=(("model.embed_tokens", "embed"), ("model.norm", "norm"), ("lm_head", "head")),
        head_attrs=(("num_key_value_groups", "groups"),),
    ),
    Family(
        name="bert",
        model_types=("bert",),
        task="sequence-classification",
        layers="bert.encoder.layer",
        attention="attention.self",
        linears=(
            ("attention.self.query", "q"),
            ("attention.self.key", "k"),
            ("attention.self.value", "v"),
            ("attention.output.dense", "o"),
            ("intermediate.dense", "up"),
            ("output.dense", "down"),
        ),
        norms=("attention.output.LayerNorm", "output.LayerNorm"),
        globals=(
            ("bert.embeddings.word_embeddings", "embed"),
            ("bert.embeddings.position_embeddings", "embed"),
            ("bert.embeddings.token_type_embeddings", "embed"),
            ("bert.embeddings.LayerNorm", "norm"),
            ("bert.pooler.dense", "pooler"),
            ("classifier", "head"),
        ),
        head_attrs=(("num_attention_heads", "heads"), ("all_head_size", "width")),
        config_head_dim=False,
    ),
    Family(
        name="vit",
        model_types=("vit",),
        task="image-classification",
        layers="vit.layers",
        attention="attention",
        linears=(
            ("attention.q_proj", "q"),
            ("attention.k_proj", "k"),
            ("attention.v_proj", "v"),
            ("attention.o_proj", "o"),
            ("mlp.fc1", "up"),
            ("mlp.fc2", "down"),
        ),
        norms=("layernorm_before", "layernorm_after"),
        globals=(
            ("vit.embeddings", "embeddings"),
            ("vit.embeddings.patch_embeddings.projection", "patch"),
            ("vit.layernorm", "norm"),
            ("classifier", "head"),
        ),
        head_attrs=(("num_attention_heads", "heads"),),
    ),
)


def family_of(model_type: str, task: str | None = None) -> Family:
    """The :class:`Family` serving ``model_type`` (and ``task``, when given); ValueError if none does."""
    for fam in FAMILIES:
        if model_type in fam.model_types and task in (None, fam.task):
            return fam
    served = ", ".join(f"{t} ({f.task})" for f in FAMILIES for t in f.model_types)
    raise ValueError(
        f"no elastic family for model type {model_type!r}{f' and task {task!r}' if task else ''}; supported: {served}"
    )


def infer_task(architectures: list[str] | None) -> Task:
    """The task of a transformers config's ``architectures`` (class-name suffix), ValueError if unknown."""
    for arch in architectures or []:
        if arch.endswith(("ForCausalLM", "LMHeadModel")):
            return "causal-lm"
        if arch.endswith("ForSequenceClassification"):
            return "sequence-classification"
        if arch.endswith("ForImageClassification"):
            return "image-classification"
    raise ValueError(
        f"cannot infer the task from architectures {architectures!r}: pass task= (one of {', '.join(TASKS)})"
    )


def task_of(model: Any) -> Task:
    """The task of a transformers model: from its config's ``architectures``, else its class name."""
    return infer_task(model.config.architectures or [type(model).__name__])


@dataclass(frozen=True)
class Dims:
    """The full model's sizes: hidden, layers, query heads, key-value heads, head_dim, FFN width."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int

    @property
    def gqa(self) -> bool:
        """Grouped-query attention: fewer key-value heads than query heads (those stay; queries shrink per group)."""
        return self.kv_heads < self.heads

    @property
    def head_unit(self) -> int:
        """Query heads come in multiples of this (one per key-value group with GQA, else 1)."""
        return self.kv_heads if self.gqa else 1

    @classmethod
    def of(cls, config: Any, family: Family) -> Dims:
        """The sizes a transformers config describes."""
        hidden, heads = int(config.hidden_size), int(config.num_attention_heads)
        kv = getattr(config, "num_key_value_heads", None) or heads
        head_dim = (getattr(config, "head_dim", None) if family.config_head_dim else None) or hidden // heads
        ffn = getattr(config, family.ffn_key, None) or 4 * hidden  # GPT-2: n_inner None means 4 * hidden
        return cls(hidden, int(config.num_hidden_layers), heads, int(kv), int(head_dim), int(ffn))
