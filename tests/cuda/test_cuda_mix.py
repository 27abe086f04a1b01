"""Mixup and CutMix on CUDA against the CPU: the same draws (host generator), the same pixels.

torch.lerp takes its ends exactly on both devices, so the pasted CutMix boxes and the unmixed
images are bit-equal; a blended pixel may differ by float rounding only.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inception3.config import TrainConfig
from inception3.data.augment.mix import mix_batch

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_mixing_on_cuda_matches_the_cpu(mode: str) -> None:
    cfg = TrainConfig(mixup_alpha=0.2, cutmix_alpha=1.0, mix_mode=mode)
    images = torch.rand(16, 3, 75, 75, generator=torch.Generator().manual_seed(0)) * 2 - 1
    labels = torch.arange(16) % 10
    for seed in range(4):
        cpu = mix_batch(images, labels, 10, cfg, np.random.default_rng(seed))
        cuda = mix_batch(images.cuda(), labels.cuda(), 10, cfg, np.random.default_rng(seed))
        assert torch.equal(cuda[1].cpu(), cpu[1])
        torch.testing.assert_close(cuda[0].cpu(), cpu[0], rtol=0, atol=1e-6)
