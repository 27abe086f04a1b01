"""`inception3 predict`: class names and probabilities for image files, with the eval preprocessing."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import PIL.Image
import torch

from inception3.data import eval_image, scale_to_unit
from inception3.errors import Inception3Error
from inception3.files import what_is_at
from inception3.model import InceptionV3
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


@torch.inference_mode()
def predict_images(
    model: InceptionV3,
    images: list[PIL.Image.Image],
    class_names: list[str] | None,
    *,
    top_k: int = 5,
    names: list[str] | None = None,
) -> list[Prediction]:
    """Top-k classes of decoded images: central crop 0.875, bilinear resize, scale to [-1, 1], softmax."""
    if top_k < 1:
        raise Inception3Error(f"--top-k must be at least 1, got {top_k}")
    num_classes = model.config.num_classes
    labels = list(class_names) if class_names else [str(i) for i in range(num_classes)]
    size = model.config.image_size
    batch = scale_to_unit(torch.stack([eval_image(image, size) for image in images]))
    device = next(model.parameters()).device
    probabilities = model.eval()(batch.to(device)).float().softmax(dim=1).cpu()
    top = probabilities.topk(min(top_k, num_classes), dim=1)
    names = names or [f"image {i}" for i in range(len(images))]
    return [
        Prediction(name, tuple(labels[i] for i in idx.tolist()), tuple(idx.tolist()), tuple(p.tolist()))
        for name, idx, p in zip(names, top.indices, top.values, strict=True)
    ]


def predict_files(
    checkpoint: Path, paths: list[Path], *, top_k: int = 5, use_ema: bool = True, batch_size: int = 32
) -> list[Prediction]:
    """Top-k predictions for image files with a checkpoint's (moving-average) weights.

    An unreadable image is an Inception3Error (`predict_each` classifies the others as well).
    """
    predictions, unreadable = predict_each(
        checkpoint, paths, top_k=top_k, use_ema=use_ema, batch_size=batch_size
    )
    if unreadable:
        raise unreadable_error(unreadable, len(paths))
    return predictions


def predict_each(
    checkpoint: Path, paths: list[Path], *, top_k: int = 5, use_ema: bool = True, batch_size: int = 32
) -> tuple[list[Prediction], list[str]]:
    """Predictions for the images that can be read, in the given order, and why the others cannot
    (one line each). The checkpoint is not loaded when no image can be read."""
    images, good, unreadable = [], [], []
    for path in paths:
        try:
            images.append(read_image(path))
            good.append(path)
        except Inception3Error as error:
            unreadable.append(" ".join(str(error).splitlines()))
    if not images:
        return [], unreadable
    model, meta = load_model(Path(checkpoint), use_ema=use_ema)
    class_names = meta.get("class_names")
    predictions: list[Prediction] = []
    for start in range(0, len(images), batch_size):
        predictions += predict_images(
            model,
            images[start : start + batch_size],
            class_names,
            top_k=top_k,
            names=[str(p) for p in good[start : start + batch_size]],
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
