"""Augmentation on the training device: small named ops on whole batches, composed from `AugmentConfig`.

`ops` holds the ops (the original's flip and colour distortion, and the scaling to [-1, 1] that
evaluation uses alone), `color` the HSV kernel, `policies` RandAugment and TrivialAugmentWide made
of `kernels` (torchvision's pixel ops, a parameter per image), `erasing` timm's random erasing,
`pipeline` the registry and the pipeline that draws each op's random numbers, and `mix` mixup and
CutMix (images with their labels, after the ops). They run where the batch is, on the accelerator
when there is one, so the loader's CPU workers only decode and crop (`crop.py`).
"""

from inception3.data.augment.color import adjust_saturation_hue_
from inception3.data.augment.ops import scale_to_unit
from inception3.data.augment.pipeline import OPS, Op, Pipeline, build_pipeline, distort_batch

__all__ = [
    "OPS",
    "Op",
    "Pipeline",
    "adjust_saturation_hue_",
    "build_pipeline",
    "distort_batch",
    "scale_to_unit",
]
