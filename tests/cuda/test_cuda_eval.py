"""Evaluation and prediction on CUDA against the CPU, in fp32 (no TF32), with a checkpoint trained on CUDA.

Stated tolerances: logits within 1e-3 (absolute; they differ by float rounding of other convolution
algorithms, ~1e-5 in practice), probabilities within 1e-3, the mean loss within 1e-4, and the same
top-1 class for every image whose two best CPU logits are more than 2e-3 apart (closer ones may
swap by rounding; the tally of correct answers may move by at most their number).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from inception3.config import EvalConfig
from inception3.data import EvalLoader, load_dataset_info, scale_to_unit
from inception3.evaluate import evaluate_checkpoint
from inception3.predict import predict_images, read_image
from inception3.weights import load_model

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("full_fp32")]

LOGITS_ABS = 1e-3
PROBABILITIES_ABS = 1e-3
LOSS_ABS = 1e-4
TIE = 2e-3


def _margin(scores: torch.Tensor) -> torch.Tensor:
    """Per row, how far the best score is ahead of the second."""
    top2 = scores.topk(2, dim=1).values
    return top2[:, 0] - top2[:, 1]


def _eval_config(device: str) -> EvalConfig:
    """fp32 on both devices (should eval ever get a precision option, it is pinned to fp32 here)."""
    values = {"split": "train", "device": device, "num_workers": 0, "batch_size": 16, "progress": False}
    if "precision" in {f.name for f in dataclasses.fields(EvalConfig)}:
        values["precision"] = "fp32"
    return EvalConfig(**values)


def test_logits_on_cuda_match_the_cpu(cuda_checkpoint: Path, shards: Path) -> None:
    """The evaluator's batches (central crop, resize, [-1, 1], NHWC) through the network on each device."""
    on_cpu, _ = load_model(cuda_checkpoint)
    on_cuda, _ = load_model(cuda_checkpoint)
    on_cpu.to(memory_format=torch.channels_last)
    on_cuda.to("cuda", memory_format=torch.channels_last)
    size = on_cpu.config.image_size
    loader = EvalLoader(load_dataset_info(shards), 16, size, split="train", num_workers=0)
    compared = 0
    with torch.inference_mode():
        for batch in loader:
            x = scale_to_unit(batch.images).contiguous(memory_format=torch.channels_last)
            cpu_logits = on_cpu(x)
            cuda_logits = on_cuda(x.cuda()).cpu()
            assert cuda_logits.dtype == torch.float32
            diff = (cuda_logits - cpu_logits).abs().max().item()
            assert diff < LOGITS_ABS, f"max |CUDA - CPU| logit = {diff:.3g}"
            clear = _margin(cpu_logits) > TIE
            assert torch.equal(cuda_logits.argmax(1)[clear], cpu_logits.argmax(1)[clear])
            compared += len(batch.labels)
    assert compared == 40


def test_evaluation_on_cuda_matches_the_cpu(cuda_checkpoint: Path, shards: Path) -> None:
    cpu = evaluate_checkpoint(cuda_checkpoint, shards, _eval_config("cpu"))
    cuda = evaluate_checkpoint(cuda_checkpoint, shards, _eval_config("cuda"))
    assert cpu.examples == cuda.examples == 40
    assert abs(cuda.loss - cpu.loss) < LOSS_ABS, (cpu.loss, cuda.loss)
    # Images near a tie may change sides; count them from the CPU's logits.
    model, _ = load_model(cuda_checkpoint)
    loader = EvalLoader(load_dataset_info(shards), 40, model.config.image_size, split="train", num_workers=0)
    with torch.inference_mode():
        ties = sum(int((_margin(model(scale_to_unit(b.images))) <= TIE).sum()) for b in loader)
    assert abs(cuda.top1 - cpu.top1) * cpu.examples <= ties, (cpu.top1, cuda.top1, ties)
    assert cpu.top1 > 0.6, "60 steps should tell the 5 colours apart (chance: 0.2)"
    assert sum(cuda.reliability["count"]) == cuda.examples  # the calibration bins, summed on the GPU
    if ties == 0:
        assert cuda.top1 == cpu.top1 and cuda.per_class == cpu.per_class
        assert cuda.confusion == cpu.confusion and cuda.f1 == cpu.f1


def test_prediction_on_cuda_matches_the_cpu(cuda_checkpoint: Path, shards: Path) -> None:
    """`predict_images` runs where the model is: the same files with the model on each device."""
    paths = sorted((shards.parent / "images").glob("class*/*.jpg"))[::4]
    images = [read_image(path) for path in paths]
    on_cpu, meta = load_model(cuda_checkpoint)
    on_cuda, _ = load_model(cuda_checkpoint)
    on_cuda.to("cuda")
    names = meta.class_names
    cpu = predict_images(on_cpu, images, names, top_k=5)
    cuda = predict_images(on_cuda, images, names, top_k=5)
    assert len(cpu) == len(cuda) == len(paths) == 10
    for a, b in zip(cpu, cuda, strict=True):
        pa = dict(zip(a.indices, a.probabilities, strict=True))
        pb = dict(zip(b.indices, b.probabilities, strict=True))
        assert pa.keys() == pb.keys()  # top-5 of 5 classes: all of them
        assert max(abs(pa[i] - pb[i]) for i in pa) < PROBABILITIES_ABS, (pa, pb)
        if a.probabilities[0] - a.probabilities[1] > TIE:
            assert a.indices[0] == b.indices[0] and a.classes[0] == b.classes[0]
