"""The original's training distortions after the crop, batched, on the training device.

Per image of a uint8 batch: random flip, brightness, then saturation, hue and contrast in one of the
original's two orders (`image_processing.py`'s `distort_color`), clip, and scale to [-1, 1]
(`distort_batch`); evaluation only scales (`scale_to_unit`). These run where the batch is, on the
accelerator when there is one, so that the loader's CPU workers only decode and crop (`crop.py`).
"""

from __future__ import annotations

import torch

from inception3.config import BRIGHTNESS_MAX_DELTA, CONTRAST_RANGE, HUE_MAX_DELTA, SATURATION_RANGE


def scale_to_unit(images: torch.Tensor) -> torch.Tensor:
    """0-255 pixels [B, 3, S, S] -> float32 in [-1, 1], as the original's `(x - 0.5) * 2` on [0, 1] pixels.

    uint8, or float32 from an evaluation preprocessing that does not round (`preprocess.py`); a new
    tensor either way (`.float()` of a float tensor is the tensor itself, which must not be scaled twice).
    """
    return images.to(torch.float32, copy=True).mul_(2.0 / 255.0).sub_(1.0)


def adjust_saturation_hue_(images: torch.Tensor, saturation: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """In place: `tf.image.adjust_saturation` then `adjust_hue`, one factor and one shift (turns) per image.

    With value v = max, chroma c = max - min and hue H in sixths of a turn (TF's rgb_to_hsv: red
    wins ties, then green), the new chroma is min(c * factor, v) (saturation c/v scaled, clipped
    to 1), H moves by 6 * hue modulo 6, and each channel becomes (v - c') + c' * X(H), X being
    the standard hue ramps. Written with in-place arithmetic and no branches or comparisons, which
    are several times slower on a CPU; two scratch planes do all the work.
    """
    r, g, b = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    value = images.amax(dim=1, keepdim=True)
    chroma = images.amin(dim=1, keepdim=True)
    torch.sub(value, chroma, out=chroma)
    # hue * chroma for a maximum in blue, replaced where green, then red, is the maximum: there
    # sign(v - channel) is 0, elsewhere 1.
    h = torch.sub(r, g).add_(chroma, alpha=4.0)
    scratch = torch.sub(b, r).add_(chroma, alpha=2.0).sub_(h)
    is_max = torch.sub(value, g).sign_().neg_().add_(1.0)
    h.addcmul_(scratch, is_max)
    torch.sub(g, b, out=scratch).sub_(h)
    torch.sub(value, r, out=is_max).sign_().neg_().add_(1.0)
    h.addcmul_(scratch, is_max)
    h.div_(torch.clamp(chroma, min=1e-12, out=scratch)).add_(hue.view(-1, 1, 1, 1) * 6.0)
    # H is now in [-2.2, 6.2]: wrap into [0, 6).
    h.sub_(torch.sub(h, 6.0, out=scratch).sign_().clamp_(min=0.0), alpha=6.0)
    h.sub_(torch.sign(h, out=scratch).clamp_(max=0.0), alpha=6.0)
    torch.minimum(chroma.mul_(saturation.view(-1, 1, 1, 1)), value, out=chroma).clamp_(min=0.0)
    base = value.sub_(chroma)
    ramp = scratch
    torch.addcmul(base, chroma, torch.sub(h, 3.0, out=ramp).abs_().sub_(1.0).clamp_(0.0, 1.0), out=r)
    torch.addcmul(base, chroma, torch.sub(h, 2.0, out=ramp).abs_().neg_().add_(2.0).clamp_(0.0, 1.0), out=g)
    torch.addcmul(base, chroma, torch.sub(h, 4.0, out=ramp).abs_().neg_().add_(2.0).clamp_(0.0, 1.0), out=b)
    return images


_CPU_CHUNK = 1  # images distorted at a time on a CPU: scratch planes stay in cache


def distort_batch(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 [B, 3, S, S] on any device -> float32 in [-1, 1] with the original's training distortions.

    Per image: flip left-right with probability 1/2; brightness ±32/255; then, in order 0,
    saturation 0.5–1.5, hue ±0.2, contrast 0.5–1.5, or in order 1 contrast, saturation, hue (the
    original picked the order by preprocessing thread; here each image draws it); clip to [0, 1];
    scale to [-1, 1]. Random numbers come from `generator` (on its own device), so a run that
    saves and restores the generator repeats its distortions exactly. On a CPU the batch is done
    one image at a time, in place, several times faster than with whole-batch temporaries.
    """
    n = images.shape[0]
    device = generator.device if generator is not None else torch.device("cpu")
    draws = torch.rand(n, 6, generator=generator, device=device, dtype=torch.float64).to(images.device)
    flip, order = draws[:, 0] < 0.5, draws[:, 1] < 0.5

    def uniform(column: int, low: float, high: float) -> torch.Tensor:
        return (low + (high - low) * draws[:, column]).float()

    brightness = uniform(2, -BRIGHTNESS_MAX_DELTA, BRIGHTNESS_MAX_DELTA).view(-1, 1, 1, 1)
    saturation = uniform(3, *SATURATION_RANGE)
    hue = uniform(4, -HUE_MAX_DELTA, HUE_MAX_DELTA)
    contrast = uniform(5, *CONTRAST_RANGE).view(-1, 1, 1, 1)
    contrast_first = order.view(-1, 1, 1, 1)

    # Brightness, contrast and the final scaling are affine per image and channel, so each run of
    # them is one multiply-add: order 1 does pixel/255 + brightness then contrast before the HSV
    # step, order 0 does contrast after it, and the clip to [0, 1] becomes a clip to [-1, 1].
    out = torch.empty(images.shape, dtype=torch.float32, device=images.device)
    step = _CPU_CHUNK if images.device.type == "cpu" else max(n, 1)
    for start in range(0, n, step):
        part = slice(start, start + step)
        x = out[part]
        if images.device.type == "cpu":  # per image: a masked select over the batch is slow on a CPU
            for j, flipped in enumerate(flip[part].tolist()):
                x[j].copy_(images[start + j].flip(-1) if flipped else images[start + j])
        else:
            x.copy_(torch.where(flip[part, None, None, None], images[part].flip(-1), images[part]))
        f, b = contrast[part], brightness[part]
        mean = x.mean(dim=(-2, -1), keepdim=True).mul_(1.0 / 255.0)
        scale = torch.where(contrast_first[part], f, torch.ones_like(f)).mul_(1.0 / 255.0)
        shift = torch.where(contrast_first[part], (1.0 - f) * mean + b, b.expand_as(mean))
        x.mul_(scale).add_(shift)
        adjust_saturation_hue_(x, saturation[part], hue[part])
        mean = x.mean(dim=(-2, -1), keepdim=True)
        scale = torch.where(contrast_first[part], torch.full_like(f, 2.0), 2.0 * f)
        shift = torch.where(contrast_first[part], torch.full_like(mean, -1.0), 2.0 * (1.0 - f) * mean - 1.0)
        x.mul_(scale).add_(shift).clamp_(-1.0, 1.0)
    return out
