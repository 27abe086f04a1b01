"""The training crops finished on the training device: cropped and resized there, or decoded there first.

At ImageNet's sizes (about 0.2 megapixels) resizing a crop to 299 costs a CPU about half what decoding
the JPEG does, and DCT scaling rarely applies (a crop seldom spans twice the output). On a GPU host the
loader's workers therefore stop after the decode (`decode="cpu"`) or after reading the record
(`decode="gpu"`), and hand over one flat uint8 buffer per batch (`Packed`): the decoded pixels of every
image, or its encoded bytes, back to back, with each image's crop box. Here they become the batch on the
device (`finish_crops`):

- decoded pixels are cropped and resized to size × size, bilinear with antialiasing, as the workers do
  on a CPU (`crop.crop_and_resize`). On the CPU this is the same uint8 kernel on the same pixels, so the
  result is the workers' to the bit; on CUDA the kernel runs in float and is rounded, within one level
  of the CPU's.
- JPEGs are decoded by `torchvision.io.decode_jpeg` on the device (nvJPEG on CUDA) in one batched call,
  then cropped and resized as above. Bytes that are not a JPEG, or that the device decoder refuses
  (CMYK, progressive files some nvJPEG versions reject, damaged data), are decoded on the CPU by
  `decode.decode_pixels` (libjpeg-turbo, Pillow for other formats); a record that neither decodes is
  reported by number, for the loader to name or skip.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.io import ImageReadMode, decode_jpeg

from inception3.data.decode import DECODE_ERRORS, decode_pixels


@dataclass
class Packed:
    """One batch as a worker hands it over: every image's data back to back in one flat uint8 buffer.

    `kind` "decoded": each image as the worker decoded it (DCT-scaled where its crop allows), [h, w, 3]
    row-major, `shapes` holding (h, w); an image the worker could decode only at another size than its
    header promised (a damaged JPEG that Pillow salvages at full size) comes still encoded, `shapes`
    (0, 0), for the training process's CPU decoders. "jpegs": every image still encoded, for the
    device's decoder. `spans`: each image's (offset, length) in `data`; `boxes`: its crop (top, left,
    height, width) in the pixels it has once decoded; `records`: the global record numbers, for error
    messages. The small arrays are NumPy's: they travel between processes by value, where each tensor
    would take a shared-memory segment of its own.
    """

    kind: str
    data: torch.Tensor  # uint8 [total]
    spans: np.ndarray  # int64 [B, 2]
    shapes: np.ndarray  # int64 [B, 2]
    boxes: np.ndarray  # int64 [B, 4]
    records: np.ndarray  # int64 [B]

    @classmethod
    def empty(cls, kind: str) -> Packed:
        """No images: what a worker returns with an error."""
        none = np.empty((0, 2), dtype=np.int64)
        return cls(kind, torch.empty(0, dtype=torch.uint8), none, none, none.reshape(0, 4), none[:, 0])

    def pieces(self) -> list[torch.Tensor]:
        """Each image's part of `data`, in order (views, no copy)."""
        return [self.data[offset : offset + length] for offset, length in self.spans.tolist()]


def resize(crop: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [3, h, w] -> uint8 [3, size, size], bilinear with antialiasing on crop's device.

    uint8 runs PyTorch's fixed-point CPU kernel, as the workers do; other devices resize in float and
    round to the nearest level.
    """
    batch = crop[None]
    options = {"size": (size, size), "mode": "bilinear", "antialias": True, "align_corners": False}
    if crop.device.type == "cpu":
        return F.interpolate(batch, **options)[0]
    return F.interpolate(batch.float(), **options)[0].round_().clamp_(0, 255).to(torch.uint8)


def _is_jpeg(piece: torch.Tensor) -> bool:
    return len(piece) > 2 and bool(piece[0] == 0xFF) and bool(piece[1] == 0xD8)


def _device_decode(pieces: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """uint8 [3, H, W] RGB on `device` for each JPEG, None where the device decoder refuses it.

    One batched call first (nvJPEG decodes a batch much faster than its images one by one); if it
    fails, one call per image, so that a single bad file costs only itself.
    """
    if not pieces:
        return []
    with warnings.catch_warnings():  # torchvision >= 0.29 marks its image codecs deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return list(decode_jpeg(pieces, mode=ImageReadMode.RGB, device=device))
        except RuntimeError:
            decoded: list[torch.Tensor | None] = []
            for piece in pieces:
                try:
                    decoded.append(decode_jpeg(piece, mode=ImageReadMode.RGB, device=device))
                except RuntimeError:
                    decoded.append(None)
            return decoded


def finish_crops(
    packed: Packed, size: int, device: torch.device
) -> tuple[torch.Tensor, list[tuple[int, str]]]:
    """A `Packed` batch, its `data` already on `device` ("decoded") or in host memory ("jpegs"), decoded
    where it is not yet, cropped and resized there: (uint8 [B', 3, size, size], failures).

    `failures` lists (record, reason) of the images no decoder could read, left out of the batch.
    """
    pieces = packed.pieces()
    decoded: dict[int, torch.Tensor | None] = {
        i: piece.view(height, width, 3).permute(2, 0, 1)
        for i, (piece, (height, width)) in enumerate(zip(pieces, packed.shapes.tolist(), strict=True))
        if height
    }
    if packed.kind == "jpegs":
        jpegs = [i for i, piece in enumerate(pieces) if _is_jpeg(piece)]
        decoded.update(zip(jpegs, _device_decode([pieces[i] for i in jpegs], device), strict=True))
    failures: list[tuple[int, str]] = []
    images = []
    for i, (top, left, height, width) in enumerate(packed.boxes.tolist()):
        image = decoded.get(i)
        if image is None:  # not a JPEG, or refused by the device's decoder: the CPU's decoders
            try:
                pixels = decode_pixels(pieces[i].cpu().numpy().tobytes())
            except DECODE_ERRORS as error:
                failures.append((int(packed.records[i]), f"image does not decode: {error}"))
                continue
            image = torch.from_numpy(pixels).to(device, non_blocking=True).permute(2, 0, 1)
        images.append(resize(image[:, top : top + height, left : left + width], size))
    if not images:
        return torch.empty((0, 3, size, size), dtype=torch.uint8, device=device), failures
    return torch.stack(images), failures
