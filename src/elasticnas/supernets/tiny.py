"""``tiny_mbv3``: a small OFA-style MobileNetV3 super-network for 24-32 px images.

Same elastic blocks and code path as the OFA-MobileNetV3 super-networks
(:class:`~elasticnas.supernets.ofa_mobilenetv3.ElasticMobileNetV3`), scaled down for
the built-in demo (scikit-learn's 8x8 digits upsampled to 32 px) and fast tests:
a 3x3 stride-2 stem of 16 channels, a fixed block of 16, three elastic stages of
widths 24, 32, 48 (strides 2, 2, 1; up to three blocks each; depth 1/2/3; kernel
3/5/7; expand ratio 3/4/6; hard-swish and squeeze-excite in the last two stages),
a 1x1 expand to 192 and a 1x1 mix to 256. Resolutions 24, 28 and 32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from elasticnas.supernets.ofa_mobilenetv3 import ElasticMobileNetV3

TINY_BASE_STAGE_WIDTH = (16, 16, 24, 32, 48, 192, 256)
TINY_STRIDE_STAGES = (1, 2, 2, 1)
TINY_ACT_STAGES = ("relu", "relu", "h_swish", "h_swish")
TINY_SE_STAGES = (False, False, True, True)
TINY_RESOLUTIONS = (24, 28, 32)


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
