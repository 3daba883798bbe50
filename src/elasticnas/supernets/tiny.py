"""``tiny_mbv3``: a small OFA-style MobileNetV3 super-network for 8-32 px images.

Same elastic blocks and code path as the OFA-MobileNetV3 super-networks
(:class:`~elasticnas.supernets.ofa_mobilenetv3.ElasticMobileNetV3`), scaled down for
the built-in demo (scikit-learn's 8x8 digits, stored upsampled to 32 px) and fast
tests: a 3x3 stride-2 stem of 8 channels, a fixed block of 8, three elastic stages of
widths 16, 16, 24 (strides 2, 2, 1; up to three blocks each; depth 1/2/3; kernel
3/5/7; expand ratio 3/4/6; hard-swish and squeeze-excite in the last two stages),
a 1x1 expand to 96 and a 1x1 mix to 128. Resolutions 8 to 32 in steps of 4.

The capacity is deliberately small and the resolution range wide (8 px is the digits'
native size; at 8-12 px the feature maps shrink to 1-2 px after the three stride-2
layers), so that on the digits accuracy really trades off against MACs across the
space: with the shipped weights the smallest sub-network (34 k MACs) scores about
92 % and the largest (2.5 M MACs) about 99 % (``benchmarks/README.md``). A wider
design (widths 16/16/24/32/48, resolutions 24-32) scored 97.6-99.8 % everywhere,
so top-1 did not rank its sub-networks by size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from elasticnas.supernets.ofa_mobilenetv3 import ElasticMobileNetV3

TINY_BASE_STAGE_WIDTH = (8, 8, 16, 16, 24, 96, 128)
TINY_STRIDE_STAGES = (1, 2, 2, 1)
TINY_ACT_STAGES = ("relu", "relu", "h_swish", "h_swish")
TINY_SE_STAGES = (False, False, True, True)
TINY_RESOLUTIONS = tuple(range(8, 33, 4))


def tiny_mbv3(
    *,
    in_channels: int = 1,
    num_classes: int = 10,
    resolutions: Sequence[int] = TINY_RESOLUTIONS,
    dropout_rate: float = 0.1,
    seed: int | None = 0,
    **kwargs: Any,
) -> ElasticMobileNetV3:
    """The tiny MobileNetV3 super-network (random weights drawn with ``seed``)."""
    return ElasticMobileNetV3(
        width_mult=1.0,
        base_stage_width=TINY_BASE_STAGE_WIDTH,
        stride_stages=TINY_STRIDE_STAGES,
        act_stages=TINY_ACT_STAGES,
        se_stages=TINY_SE_STAGES,
        first_stride=2,
        ks_list=(3, 5, 7),
        expand_ratio_list=(3, 4, 6),
        depth_list=(1, 2, 3),
        resolutions=resolutions,
        in_channels=in_channels,
        num_classes=num_classes,
        dropout_rate=dropout_rate,
        seed=seed,
        **kwargs,
    )
