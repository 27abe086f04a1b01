"""`inception3 predict`: class names and probabilities for image files, with the weights' evaluation
preprocessing (`data/preprocess.py`; the original's central crop and TF1 resize for inception3's own).

`predict` is the API (`inception3.predict(weights, images)`): image files, Pillow images or uint8
tensors in, one `Prediction` per image out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import PIL.Image
import torch

from inception3.callable_module import make_callable
from inception3.config import DEFAULT_EVAL_PREPROCESSING, TOP_K
from inception3.data import scale_to_unit
from inception3.data.decode import DECODE_ERRORS, open_image
from inception3.data.labels import label_space, output_names
from inception3.data.preprocess import Image, choose_preprocessing, decode, prepare, preprocessing_note
from inception3.errors import Inception3Error
from inception3.files import what_is_at
from inception3.model import InceptionV3
from inception3.run.distributed import resolve_device
from inception3.weights import WeightsMeta, load_model

# What `predict` classifies: an image file, a Pillow image (any mode) or uint8 RGB pixels [3, H, W].
ImageInput = str | os.PathLike[str] | PIL.Image.Image | torch.Tensor


@dataclass(frozen=True)
class Prediction:
    """The `top_k` most probable classes of one image, most probable first."""

    image: str
    classes: tuple[str, ...]
    indices: tuple[int, ...]  # 0-based class indices
    probabilities: tuple[float, ...]


def read_image(path: str | os.PathLike[str]) -> PIL.Image.Image:
    """A decoded RGB image; a missing or unreadable file, or one over the pixel limit
    (`data/decode.py`), is an Inception3Error naming it."""
    path = Path(path)
    if not path.is_file():
        found = what_is_at(path)
        raise Inception3Error(
            f"{path}: " + ("no such image file" if found == "nothing" else f"is {found}, not an image file")
        )
    try:
        with open_image(path.read_bytes()) as image:
            return image.convert("RGB")
    except DECODE_ERRORS as error:
        raise Inception3Error(f"{path}: not a readable image ({error})") from None


def _decode_file(path: Path, preprocessing: str) -> Image:
    """`path` decoded as `preprocessing`'s source pipeline decodes it (as eval decodes a record)."""
    try:
        return decode(Path(path).read_bytes(), preprocessing)
    except DECODE_ERRORS as error:
        raise Inception3Error(f"{path}: not a readable image ({error})") from None


@torch.inference_mode()
def predict_images(
    model: InceptionV3,
    images: list[Image],
    class_names: list[str] | tuple[str, ...] | None,
    *,
    top_k: int = 5,
    names: list[str] | None = None,
    preprocessing: str = DEFAULT_EVAL_PREPROCESSING,
) -> list[Prediction]:
    """Top-k classes of decoded images (Pillow, or uint8 [3, H, W]): the named evaluation preprocessing,
    [-1, 1], softmax. A 1001-output model named by 1000 class names loses TF's background output."""
    if top_k < 1:
        raise Inception3Error(f"--top-k must be at least 1, got {top_k}")
    space = label_space(model.config.num_classes, tuple(class_names) if class_names else None)
    num_classes = model.config.num_classes - space.first_column
    labels = list(space.names) if space.names else [str(i) for i in range(num_classes)]
    size = model.config.image_size
    batch = scale_to_unit(torch.stack([prepare(image, size, preprocessing) for image in images]))
    device = next(model.parameters()).device
    logits = model.eval()(batch.to(device))[:, space.first_column :]
    probabilities = logits.float().softmax(dim=1).cpu()
    top = probabilities.topk(min(top_k, num_classes), dim=1)
    names = names or [f"image {i}" for i in range(len(images))]
    return [
        Prediction(name, tuple(labels[i] for i in idx.tolist()), tuple(idx.tolist()), tuple(p.tolist()))
        for name, idx, p in zip(names, top.indices, top.values, strict=True)
    ]


def predict(
    weights: str | os.PathLike[str] | tuple[InceptionV3, WeightsMeta],
    images: ImageInput | Sequence[ImageInput],
    *,
    top_k: int = TOP_K,
    use_ema: bool = True,
    preprocessing: str | None = None,
    labels_file: str | os.PathLike[str] | None = None,
    weights_format: str | None = None,
    device: str = "auto",
    batch_size: int = 32,
    notes: Callable[[str], None] | None = None,
    unreadable: Callable[[str], None] | None = None,
) -> list[Prediction]:
    """The `top_k` most probable classes of each image, in the given order, with the evaluation
    preprocessing the weights were scored with.

    `weights`: any file `inception3 predict --checkpoint` takes (its moving averages unless
    `use_ema=False`; `weights_format`: what it is, when its contents do not say), or the
    `(model, meta)` of `load_model`, to classify many times without reading the file again (the
    model is moved to `device`). `images`: image files (decoded as the preprocessing's source
    decodes them, refused above Pillow's pixel limit), Pillow images, uint8 RGB tensors [3, H, W]
    or a batch of them [B, 3, H, W]; one of these alone is one image. A file is named by its path in
    its `Prediction`, any other image as "image I", its index.
    `preprocessing`: the evaluation preprocessing (default: the weights' own); `labels_file`: class
    names instead of the weights'; `device`: where the model runs ("auto": CUDA when available).
    `notes` gets one line for each choice that is not inception3's plain case. An image file that
    cannot be read is an Inception3Error naming it, or, with `unreadable`, one line given to it and
    the image left out; the weights are not read when no image can be.
    """
    items = _image_list(images)
    good: list[tuple[str, Path | Image]] = []
    for index, item in enumerate(items):
        if not isinstance(item, str | os.PathLike):
            good.append((f"image {index}", _pixels(item, index)))
            continue
        try:
            read_image(item)  # a full decode: unreadable files are known before the weights are read
            good.append((str(item), Path(item)))
        except Inception3Error as error:
            if unreadable is None:
                raise
            unreadable(" ".join(str(error).splitlines()))
    if not good:
        return []
    on = resolve_device(device)  # before the weights are read: a missing GPU is said at once
    if isinstance(weights, tuple):
        (model, meta), source = weights, "the model"
    else:
        model, meta = load_model(Path(weights), use_ema=use_ema, weights_format=weights_format)
        source = Path(weights)
    model.to(on)
    labels = None if labels_file is None else Path(labels_file)
    name = choose_preprocessing(preprocessing, meta.eval_preprocessing)
    space = label_space(
        model.config.num_classes,
        output_names(meta.class_names, labels),
        checkpoint=source,
        labels_file=labels,
    )
    note = preprocessing_note(name, model.config.image_size, preprocessing is not None)
    for line in [*([note] if note else []), *space.notes]:
        if notes is not None:
            notes(line)
    predictions: list[Prediction] = []
    for start in range(0, len(good), batch_size):
        chunk = good[start : start + batch_size]
        predictions += predict_images(
            model,
            [_decode_file(image, name) if isinstance(image, Path) else image for _, image in chunk],
            space.names,
            top_k=top_k,
            names=[label for label, _ in chunk],
            preprocessing=name,
        )
    return predictions


def _image_list(images: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    """`images` as a list of single images: one image alone, or a batch tensor, becomes a list."""
    if isinstance(images, torch.Tensor) and images.dim() == 4:
        return list(images.unbind())
    if isinstance(images, str | os.PathLike | PIL.Image.Image | torch.Tensor):
        return [images]
    return list(images)


def _pixels(image: object, index: int) -> Image:
    """A Pillow image as it is; a tensor checked to be uint8 RGB [3, H, W], on the CPU."""
    if isinstance(image, PIL.Image.Image):
        return image
    if (
        isinstance(image, torch.Tensor)
        and image.dtype == torch.uint8
        and image.dim() == 3
        and len(image) == 3
    ):
        return image.cpu()
    what = (
        f"a {str(image.dtype).removeprefix('torch.')} tensor of shape {list(image.shape)}"
        if isinstance(image, torch.Tensor)
        else f"a {type(image).__name__}"
    )
    raise Inception3Error(
        f"image {index}: is {what}; give an image file, a Pillow image or uint8 RGB pixels [3, H, W]"
    )


def predict_each(
    checkpoint: Path, paths: list[Path], **options: object
) -> tuple[list[Prediction], list[str]]:
    """`predict` of image files that keeps going past unreadable ones: the predictions of those that
    can be read, in the given order, and why the others cannot (one line each)."""
    unreadable: list[str] = []
    return predict(checkpoint, paths, unreadable=unreadable.append, **options), unreadable  # type: ignore[arg-type]


def unreadable_error(unreadable: list[str], total: int) -> Inception3Error:
    """One line for the images `predict_each` could not read (the others were classified)."""
    if total == 1:
        return Inception3Error(unreadable[0])
    others = "none of them was classified" if len(unreadable) == total else "the others are classified above"
    return Inception3Error(
        f"{len(unreadable)} of {total} images could not be read ({others}): {'; '.join(unreadable)}"
    )


def format_predictions(predictions: list[Prediction], *, as_json: bool = False) -> str:
    """One JSON object per line, or per image its path then `  probability  class` lines."""
    if as_json:
        return "\n".join(json.dumps(asdict(p)) for p in predictions)
    lines = []
    for p in predictions:
        lines.append(f"{p.image}:")
        lines += [f"  {prob:.4f}  {name}" for name, prob in zip(p.classes, p.probabilities, strict=True)]
    return "\n".join(lines)


make_callable(__name__)  # `inception3.predict(...)` is `predict` above
