"""`inception3 predict`: class names and probabilities for image files, with the weights' evaluation
preprocessing (`data/preprocess.py`; the original's central crop and TF1 resize for inception3's own)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import PIL.Image
import torch

from inception3.config import DEFAULT_EVAL_PREPROCESSING
from inception3.data import scale_to_unit
from inception3.data.decode import DECODE_ERRORS
from inception3.data.labels import label_space, output_names
from inception3.data.preprocess import Image, choose_preprocessing, decode, prepare, preprocessing_note
from inception3.errors import Inception3Error
from inception3.files import what_is_at
from inception3.model import InceptionV3
from inception3.run.distributed import resolve_device
from inception3.weights import load_model


@dataclass(frozen=True)
class Prediction:
    """The `top_k` most probable classes of one image, most probable first."""

    image: str
    classes: tuple[str, ...]
    indices: tuple[int, ...]  # 0-based class indices
    probabilities: tuple[float, ...]


def read_image(path: Path) -> PIL.Image.Image:
    """A decoded RGB image; a missing or unreadable file is an Inception3Error naming it."""
    path = Path(path)
    if not path.is_file():
        found = what_is_at(path)
        raise Inception3Error(
            f"{path}: " + ("no such image file" if found == "nothing" else f"is {found}, not an image file")
        )
    try:
        with PIL.Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError, PIL.Image.DecompressionBombError) as error:
        raise Inception3Error(f"{path}: not a readable image ({error})") from None


def _decode_file(path: Path, preprocessing: str) -> Image:
    """`path` decoded as `preprocessing`'s source pipeline decodes it (as eval decodes a record)."""
    try:
        return decode(Path(path).read_bytes(), preprocessing)
    except (*DECODE_ERRORS, PIL.Image.DecompressionBombError) as error:
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


def predict_each(
    checkpoint: Path,
    paths: list[Path],
    *,
    top_k: int = 5,
    use_ema: bool = True,
    batch_size: int = 32,
    preprocessing: str | None = None,
    labels_file: Path | None = None,
    weights_format: str | None = None,
    device: str = "auto",
    notes: Callable[[str], None] | None = None,
) -> tuple[list[Prediction], list[str]]:
    """Predictions for the images that can be read, in the given order, and why the others cannot
    (one line each). The checkpoint is not loaded when no image can be read.

    `preprocessing`: the evaluation preprocessing (default: the weights' own); `labels_file`: class
    names instead of the weights'; `weights_format`: how to read `checkpoint` (default: detected);
    `device`: where the model runs ("auto": CUDA when available).
    `notes` gets one line for each choice that is not inception3's plain case.
    """
    good, unreadable = [], []
    for path in paths:
        try:
            read_image(path)  # a full decode: unreadable files are listed before the weights are read
            good.append(Path(path))
        except Inception3Error as error:
            unreadable.append(" ".join(str(error).splitlines()))
    if not good:
        return [], unreadable
    on = resolve_device(device)  # before the weights are read: a missing GPU is said at once
    model, meta = load_model(Path(checkpoint), use_ema=use_ema, weights_format=weights_format)
    model.to(on)
    name = choose_preprocessing(preprocessing, meta.eval_preprocessing)
    space = label_space(
        model.config.num_classes,
        output_names(meta.class_names, labels_file),
        checkpoint=checkpoint,
        labels_file=labels_file,
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
            [_decode_file(path, name) for path in chunk],
            space.names,
            top_k=top_k,
            names=[str(p) for p in chunk],
            preprocessing=name,
        )
    return predictions, unreadable


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
