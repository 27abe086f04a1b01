"""The training crops finished on the training device: resized there, or decoded (nvJPEG) and resized.

At ImageNet's sizes (about 0.2 megapixels) resizing a crop to 299 costs a CPU about half what decoding
the JPEG does, and DCT scaling rarely applies (a crop seldom spans twice the output). On a GPU host the
loader's workers therefore stop after the crop (`decode="cpu"`) or after reading the record
(`decode="gpu"`), and hand over one flat uint8 buffer per batch (`Packed`): the pixels of every crop,
or the encoded bytes of every image, back to back. Here they become the batch on the device:

- `resize_crops`: each crop resized to size × size, bilinear with antialiasing, as the workers do on a
  CPU (`crop.crop_and_resize`). On the CPU this is the same uint8 kernel, so the result is the workers'
  to the bit; on CUDA the kernel runs in float and is rounded, within one level of the CPU's.
- `decode_crops`: JPEGs decoded by `torchvision.io.decode_jpeg` on the device (nvJPEG on CUDA) in one
  batched call, then cropped and resized as above. Bytes that are not a JPEG, or that the device
  decoder refuses (CMYK, progressive files some nvJPEG versions reject, damaged data), are decoded on
  the CPU by `decode.decode_pixels` (libjpeg-turbo, Pillow for other formats); a record that neither
  decodes is reported by number, for the loader to name or skip.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.io import ImageReadMode, decode_jpeg

from inception3.data.decode import DECODE_ERRORS, decode_pixels


@dataclass
class Packed:
    """One batch as a worker hands it over: a flat uint8 buffer of every image's data, back to back.

    `kind` "crops": each image's cropped pixels, [h, w, 3] row-major (`sizes` holds h, w); "jpegs": each
    image's encoded bytes (`sizes` holds the byte count, 1), to be cut to `boxes` (top, left, height,
    width in pixels of the full image) once decoded. `records` are the global record numbers, for
    error messages.
    """

    kind: str
    data: torch.Tensor  # uint8 [total]
    sizes: torch.Tensor  # int64 [B, 2]
    boxes: torch.Tensor  # int64 [B, 4]
    records: torch.Tensor  # int64 [B]

    @classmethod
    def empty(cls, kind: str) -> Packed:
        """No images: what a worker returns with an error."""
        none = torch.empty(0, dtype=torch.int64)
        return cls(kind, torch.empty(0, dtype=torch.uint8), none.view(0, 2), none.view(0, 4), none)

    def pieces(self) -> list[torch.Tensor]:
        """Each image's part of `data`, in order (views, no copy)."""
        counts = self.sizes.prod(dim=1) * (3 if self.kind == "crops" else 1)
        return list(torch.split(self.data, counts.tolist()))


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


def resize_crops(packed: Packed, size: int, device: torch.device) -> torch.Tensor:
    """uint8 [B, 3, size, size] on `device` from a "crops" batch (one copy of the buffer to the device)."""
    flat = packed.data.to(device, non_blocking=True)
    counts = (packed.sizes.prod(dim=1) * 3).tolist()
    out = torch.empty((len(counts), 3, size, size), dtype=torch.uint8, device=device)
    for i, (piece, (height, width)) in enumerate(
        zip(torch.split(flat, counts), packed.sizes.tolist(), strict=True)
    ):
        out[i] = resize(piece.view(height, width, 3).permute(2, 0, 1), size)
    return out


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


def decode_crops(
    packed: Packed, size: int, device: torch.device
) -> tuple[torch.Tensor, list[tuple[int, str]]]:
    """A "jpegs" batch decoded, cropped and resized on `device`: (uint8 [B', 3, size, size], failures).

    `failures` lists (record, reason) of the images neither decoder could read, left out of the batch.
    """
    pieces = packed.pieces()
    jpegs = [i for i, piece in enumerate(pieces) if _is_jpeg(piece)]
    decoded: dict[int, torch.Tensor | None] = dict.fromkeys(range(len(pieces)))
    decoded.update(zip(jpegs, _device_decode([pieces[i] for i in jpegs], device), strict=True))
    failures: list[tuple[int, str]] = []
    images = []
    for i, (top, left, height, width) in enumerate(packed.boxes.tolist()):
        image = decoded[i]
        if image is None:  # not a JPEG, or refused by the device's decoder: the CPU's decoders
            try:
                pixels = decode_pixels(pieces[i].numpy().tobytes())
            except DECODE_ERRORS as error:
                failures.append((int(packed.records[i]), f"image does not decode: {error}"))
                continue
            image = torch.from_numpy(pixels).to(device, non_blocking=True).permute(2, 0, 1)
        images.append(resize(image[:, top : top + height, left : left + width], size))
    if not images:
        return torch.empty((0, 3, size, size), dtype=torch.uint8, device=device), failures
    return torch.stack(images), failures
