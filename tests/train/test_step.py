"""One training step: the original's loss, and random draws fixed by (seed, step, rank)."""

from __future__ import annotations

import torch
from conftest import one_step, tiny_config

from inception3.data.augment import distort_batch
from inception3.model import InceptionOutputs, InceptionV3, parameter_groups
from inception3.train.optim import build_optimizer
from inception3.train.step import (
    AUGMENT_STREAM,
    DROPOUT_STREAM,
    inception_loss,
    step_seed,
    train_step,
)


def test_loss_is_smoothed_cross_entropy_plus_weighted_aux() -> None:
    torch.manual_seed(0)
    logits, aux, labels = torch.randn(4, 5), torch.randn(4, 5), torch.tensor([0, 3, 4, 1])
    cfg = tiny_config()

    def smoothed(z: torch.Tensor) -> torch.Tensor:  # TF: one_hot * (1 - 0.1) + 0.1 / num_classes
        target = torch.nn.functional.one_hot(labels, 5).float() * 0.9 + 0.1 / 5
        return -(target * z.log_softmax(1)).sum(1).mean()

    total, main, aux_loss = inception_loss(InceptionOutputs(logits, aux), labels, cfg)
    torch.testing.assert_close(main, smoothed(logits))
    torch.testing.assert_close(aux_loss, smoothed(aux))
    torch.testing.assert_close(total, smoothed(logits) + 0.4 * smoothed(aux))
    total, main, aux_loss = inception_loss(logits, labels, cfg)
    assert torch.equal(total, main) and float(aux_loss) == 0.0


def _weights_after_step(rank: int, step: int) -> dict[str, torch.Tensor]:
    losses, weights = one_step(tiny_config(), step, rank)
    assert torch.isfinite(losses.total) and losses.total > losses.cross_entropy > 0
    return weights


def test_a_step_repeats_exactly_and_ranks_and_steps_draw_differently() -> None:
    a, b = _weights_after_step(0, 5), _weights_after_step(0, 5)
    assert all(torch.equal(a[k], b[k]) for k in a)
    other_rank, other_step = _weights_after_step(1, 5), _weights_after_step(0, 6)
    assert not torch.equal(a["Conv2d_1a_3x3.weight"], other_rank["Conv2d_1a_3x3.weight"])
    assert not torch.equal(a["Conv2d_1a_3x3.weight"], other_step["Conv2d_1a_3x3.weight"])
    assert len({step_seed(0, s, r, k) for s in range(3) for r in range(3) for k in range(2)}) == 18


def test_accumulation_adds_the_gradients_of_its_micro_batches() -> None:
    cfg = tiny_config(grad_accum=2)
    torch.manual_seed(0)
    model = InceptionV3(num_classes=5, depth_multiplier=0.25, image_size=75).train()
    reference = InceptionV3(num_classes=5, depth_multiplier=0.25, image_size=75).train()
    reference.load_state_dict(model.state_dict())
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (8, 3, 75, 75), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 5, (8,), generator=g)
    train_step(model, build_optimizer(parameter_groups(model, 0.0), cfg), images, labels, 3, 0, cfg)

    x = distort_batch(images, torch.Generator().manual_seed(step_seed(cfg.seed, 3, 0, AUGMENT_STREAM)))
    torch.manual_seed(step_seed(cfg.seed, 3, 0, DROPOUT_STREAM))
    for part in (slice(0, 4), slice(4, 8)):  # batch-norm statistics of 4 images each
        (inception_loss(reference(x[part]), labels[part], cfg)[0] / 2).backward()
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, msg=name)
