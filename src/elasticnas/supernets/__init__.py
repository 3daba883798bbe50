"""Elastic super-networks: registry and base contract.

``create_supernet("ofa_mbv3_w10")`` builds a registered super-network (random,
seeded weights unless ``weights=`` names a checkpoint). Adding a family is one
module with a :class:`Supernet` subclass (an :class:`ImageSupernet` for images) and
its registration: :func:`register_supernet` for the factory and, for ``pt`` export,
:func:`register_subnet_builder` for the function that rebuilds an exported
architecture under the class's :attr:`Supernet.family`. A super-network built around
another (quantization, adapters) registers its factory with :func:`register_supernet_wrapper`;
:meth:`Supernet.recipe` and :func:`rebuild_supernet` build any of them again. Installed packages register
super-networks through the ``elasticnas.supernets`` entry-point group. The built-in
families and the public names below are imported on first use (PEP 562), so
``list_supernets()`` does not load PyTorch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from elasticnas.registry import Registry, lazy_exports

if TYPE_CHECKING:
    from torch import nn

    from elasticnas.supernets._mbv3_space import MobileNetV3Space
    from elasticnas.supernets.base import ImageSupernet, LayerSpec, Supernet
    from elasticnas.supernets.ofa_mobilenetv3 import ElasticMobileNetV3, ofa_mbv3_w10, ofa_mbv3_w12
    from elasticnas.supernets.ofa_resnet import ElasticResNet, ResNetSpace, ofa_resnet50
    from elasticnas.supernets.tiny import tiny_mbv3

_LAZY = {
    "ImageSupernet": "elasticnas.supernets.base",
    "LayerSpec": "elasticnas.supernets.base",
    "Supernet": "elasticnas.supernets.base",
    "ElasticMobileNetV3": "elasticnas.supernets.ofa_mobilenetv3",
    "MobileNetV3Space": "elasticnas.supernets._mbv3_space",
    "ofa_mbv3_w10": "elasticnas.supernets.ofa_mobilenetv3",
    "ofa_mbv3_w12": "elasticnas.supernets.ofa_mobilenetv3",
    "ElasticResNet": "elasticnas.supernets.ofa_resnet",
    "ResNetSpace": "elasticnas.supernets.ofa_resnet",
    "ofa_resnet50": "elasticnas.supernets.ofa_resnet",
    "tiny_mbv3": "elasticnas.supernets.tiny",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


SUPERNETS: Registry[Callable[..., Supernet]] = Registry("supernet")
SUBNET_BUILDERS: Registry[Callable[[Mapping[str, Any]], nn.Module]] = Registry("sub-network family")
SUPERNET_WRAPPERS: Registry[Callable[..., Supernet]] = Registry("supernet wrapper")


def register_supernet(name: str, factory: Callable[..., Supernet], *, aliases: tuple[str, ...] = ()) -> None:
    """Register a super-network class or factory taking keyword arguments (e.g. ``seed``)."""
    SUPERNETS.register(name, factory, aliases=aliases)


def list_supernets(pattern: str | None = None) -> list[str]:
    """Names of the registered super-networks (aliases left out)."""
    return SUPERNETS.names(pattern)


def register_supernet_wrapper(name: str, factory: Callable[..., Supernet]) -> None:
    """Register ``factory(base, **options)``, a super-network built around another (quantization, adapters),
    under the ``wrapper`` name its :meth:`Supernet.recipe` gives: :func:`rebuild_supernet` finds it there."""
    SUPERNET_WRAPPERS.register(name, factory)


def rebuild_supernet(recipe: Mapping[str, Any]) -> Supernet:
    """The super-network that :meth:`Supernet.recipe` describes, with the same weights (how a study's
    trials are exported and measured again). Raises :class:`~elasticnas.errors.ElasticNASError` when
    weights were only ever held in memory (trained or loaded from a state dict, never saved)."""
    from elasticnas.errors import ElasticNASError
    from elasticnas.supernets.base import IN_MEMORY_WEIGHTS

    weights = recipe.get("weights")
    name = recipe.get("wrapper") or recipe.get("supernet")
    if weights == IN_MEMORY_WEIGHTS:
        raise ElasticNASError(
            f"super-network {name!r} had weights that were never saved to a file (trained or loaded in memory), "
            "so they cannot be found again; save them (Trainer.export_weights(path)), load that file and search "
            "again, or call export_subnet(supernet, config, ...) with the super-network in memory"
        )
    options = dict(recipe.get("options") or {})
    if "wrapper" not in recipe:
        return create_supernet(str(recipe["supernet"]), weights=weights, **options)
    # a wrapper's own weights file holds its base's weights too: the base's source is then irrelevant
    base_recipe = recipe["base"] if weights is None else {**recipe["base"], "weights": None}
    net = SUPERNET_WRAPPERS.get(str(recipe["wrapper"]))(rebuild_supernet(base_recipe), **options)
    if weights is not None:
        net.load_weights(weights)
    return net.eval()


def register_subnet_builder(family: str, builder: Callable[[Mapping[str, Any]], nn.Module]) -> None:
    """Register how sub-networks of ``family`` (:attr:`Supernet.family`) are rebuilt from :meth:`Supernet.arch`.

    ``builder(arch)`` returns the standalone module (weights arbitrary) whose state dict the
    extracted sub-network's loads into; ``pt`` export and :func:`~elasticnas.export.load_subnet` use it.
    """
    SUBNET_BUILDERS.register(family, builder)


def build_subnet(arch: Mapping[str, Any], family: str | None = None) -> nn.Module:
    """Build the static network an architecture dict describes (weights random) with the builder of
    ``family``; by default the family its ``"name"`` gives (as in OFA's ``net.config``)."""
    return SUBNET_BUILDERS.get(family if family is not None else str(arch.get("name")))(arch)


RANDOM_WEIGHTS = "random"
HF_PREFIX = "hf:"  # create_supernet("hf:/path/to/folder"): a Hugging Face model folder


def create_supernet(
    name: str, weights: str | os.PathLike[str] | Mapping[str, Any] | None = None, **kwargs: Any
) -> Supernet:
    """Build the super-network registered as ``name`` (or an alias).

    ``weights``: a checkpoint path or state dict loaded strictly (see
    :meth:`Supernet.load_weights`); ``None`` loads the trained weights shipped
    with elasticnas for this super-network when there are some (``tiny_mbv3``)
    and no factory arguments are given, else keeps the seeded random
    initialisation, as ``weights="random"`` always does. Further keyword
    arguments (``seed``, ``num_classes``, ...) go to the factory.

    ``"hf:PATH"`` names a Hugging Face model folder: an elastic transformer over it
    (:func:`~elasticnas.supernets.hf.load_hf_supernet`; keyword arguments such as
    ``task`` and the space options go there, ``weights`` is a checkpoint of the super-network).
    """
    from elasticnas.data import builtin_weights, has_builtin_weights

    if name.startswith(HF_PREFIX):  # a Hugging Face folder, made elastic
        from elasticnas.supernets.hf import load_hf_supernet

        folder = os.path.abspath(name[len(HF_PREFIX) :])
        hf_net = load_hf_supernet(folder, **kwargs)
        hf_net.name = HF_PREFIX + folder  # a study records it: found again from any working directory
        if weights is not None:
            hf_net.load_weights(weights)
        return hf_net.eval()
    canonical = SUPERNETS.canonical(name)
    net = SUPERNETS.get(canonical)(**kwargs)
    net.name = canonical
    if weights is None and not kwargs and has_builtin_weights(canonical):
        net.load_weights(builtin_weights(canonical))
        net.weights_source = None  # the default: create_supernet(name) gives these weights again
    elif isinstance(weights, str) and weights == RANDOM_WEIGHTS:
        net.weights_source = RANDOM_WEIGHTS
    elif weights is not None:
        net.load_weights(weights)
    net.eval()
    return net


SUPERNETS.register_lazy("tiny_mbv3", "elasticnas.supernets.tiny:tiny_mbv3")
SUPERNETS.register_lazy("tiny_gpt", "elasticnas.supernets.tiny_gpt:tiny_gpt")
SUPERNETS.register_lazy(
    "ofa_mbv3_w10", "elasticnas.supernets.ofa_mobilenetv3:ofa_mbv3_w10", aliases=("ofa_mbv3_d234_e346_k357_w1.0",)
)
SUPERNETS.register_lazy(
    "ofa_mbv3_w12", "elasticnas.supernets.ofa_mobilenetv3:ofa_mbv3_w12", aliases=("ofa_mbv3_d234_e346_k357_w1.2",)
)
SUPERNETS.register_lazy("ofa_resnet50", "elasticnas.supernets.ofa_resnet:ofa_resnet50", aliases=("ofa_resnet50d",))
SUBNET_BUILDERS.register_lazy("MobileNetV3", "elasticnas.supernets.ofa_mobilenetv3:build_mobilenetv3")
SUBNET_BUILDERS.register_lazy("ResNets", "elasticnas.supernets.ofa_resnet:build_resnet")
SUBNET_BUILDERS.register_lazy("hf", "elasticnas.supernets.hf:build_hf_subnet")
SUPERNET_WRAPPERS.register_lazy("qdq", "elasticnas.quantization._supernet:quantized_from_recipe")
SUPERNET_WRAPPERS.register_lazy("lora", "elasticnas.adapters._supernet:LoraSupernet")

__all__ = [
    "SUBNET_BUILDERS",
    "SUPERNETS",
    "SUPERNET_WRAPPERS",
    "ElasticMobileNetV3",
    "ElasticResNet",
    "ImageSupernet",
    "LayerSpec",
    "MobileNetV3Space",
    "ResNetSpace",
    "Supernet",
    "build_subnet",
    "create_supernet",
    "list_supernets",
    "ofa_mbv3_w10",
    "ofa_mbv3_w12",
    "ofa_resnet50",
    "register_subnet_builder",
    "rebuild_supernet",
    "register_supernet",
    "register_supernet_wrapper",
    "tiny_mbv3",
]
