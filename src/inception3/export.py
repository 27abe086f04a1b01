"""A checkpoint's network as a file other runtimes load: ONNX, TorchScript, safetensors, or the weights
of torchvision's, timm's and Keras' own Inception v3.

The moving-average weights are exported by default, as the evaluator uses them. Exported networks
take float32 images [B, 3, S, S] scaled to [-1, 1] (`data.augment.scale_to_unit`) and return the
logits [B, num_classes]; the batch size is free. The class names and the evaluation preprocessing
the weights want (`data/preprocess.py`: how images become those [-1, 1] inputs) travel with the
file: ONNX metadata `class_names` and `eval_preprocessing`, TorchScript extra files
`class_names.json` and `eval_preprocessing.txt`, safetensors metadata of the same names.

The other formats are the networks other projects build themselves, each written by its format's
module in `weights/` (`PEERS`): torchvision's and timm's state dicts, a Keras 3 `.weights.h5` and a
timm / Hugging Face folder. They hold Inception v3 at full width only, and what they cannot hold (the
aux head, class names) is said in a note. Keras averages the Mixed blocks' 3×3 pools over the real
pixels as TF-Slim and this model do, torchvision and timm over the zero padding too: where the
weights were trained the other way, the exported network is not the same one, and the note gives
the difference measured on fixed images instead of claiming equality (`pooling_note`).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol, cast

import torch

from inception3.compat import onnx_exporter_quiet
from inception3.data.preprocess import choose_preprocessing
from inception3.errors import Inception3Error, interrupts_win
from inception3.files import atomic_write, check_output, require_directory, what_is_at
from inception3.model import InceptionV3
from inception3.weights import WeightsMeta, load_model
from inception3.weights.convert import counts_padding, require_full_width, whose, with_pooling
from inception3.weights.file import HF_WEIGHTS
from inception3.weights.safetensors import to_metadata

PEERS = {  # the formats of other projects' networks -> the module that writes them
    "torchvision": "inception3.weights.torchvision",
    "timm": "inception3.weights.timm",
    "keras": "inception3.weights.keras",
    "hf": "inception3.weights.hf",
}
FORMATS = ("onnx", "torchscript", "safetensors", *PEERS)
ONNX_OPSET = 18  # the default of torch's ONNX exporter; onnxruntime ≥ 1.14 runs it
EXAMPLES = {"torchvision": "model.pth", "timm": "model.pth", "keras": "model.weights.h5"}  # for messages
CHECK_IMAGES = 8  # the fixed random images a pooling difference is measured on
CHECK_SEED = 0


class PeerWriter(Protocol):
    """What a format module that writes another project's network provides."""

    PROJECT: str  # the project, for messages
    COUNTS_PADDING: bool  # its Mixed blocks' average pools count the zero padding

    def write(self, model: InceptionV3, output: BinaryIO | Path, meta: WeightsMeta) -> list[str]: ...


def _example(image_size: int, batch: int = 2) -> torch.Tensor:
    """A traced/exported example input; batch 2 so the exporters do not specialise on batch 1."""
    return torch.zeros(batch, 3, image_size, image_size)


def export_onnx(model: InceptionV3, output: BinaryIO, meta: WeightsMeta) -> None:
    """ONNX graph of the eval-mode network, input `images`, output `logits`, dynamic batch."""
    import onnx

    batch = torch.export.Dim("batch", min=1)
    with onnx_exporter_quiet():
        program = torch.onnx.export(
            model,
            (_example(model.config.image_size),),
            input_names=["images"],
            output_names=["logits"],
            dynamic_shapes=({0: batch},),
            opset_version=ONNX_OPSET,
            dynamo=True,
            verbose=False,
        )
    proto = program.model_proto
    onnx.helper.set_model_props(
        proto,
        {
            "class_names": json.dumps(list(meta.class_names or ())),
            "image_size": str(model.config.image_size),
            "eval_preprocessing": meta.eval_preprocessing,
        },
    )
    onnx.save(proto, output)


def export_torchscript(model: InceptionV3, output: BinaryIO, meta: WeightsMeta) -> None:
    """A traced TorchScript module (eval mode: no auxiliary head), loadable by `torch.jit.load`."""
    with torch.no_grad(), warnings.catch_warnings():
        # TorchScript is deprecated upstream but still the format C++ and mobile runtimes load; the
        # input-shape checks become constants of the trace, which is what an exported model wants.
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, _example(model.config.image_size), check_trace=False)
        extra = {
            "class_names.json": json.dumps(list(meta.class_names or ())),
            "eval_preprocessing.txt": meta.eval_preprocessing,
        }
        torch.jit.save(traced, output, _extra_files=extra)


def export_safetensors(model: InceptionV3, output: BinaryIO, meta: WeightsMeta) -> None:
    """The state dict (our TF-Slim key names) with the model config, class names and evaluation
    preprocessing as metadata (`weights.safetensors.to_metadata`)."""
    from safetensors.torch import save

    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    output.write(save(state, metadata=to_metadata(meta, model.config)))


def check_images(image_size: int) -> torch.Tensor:
    """The fixed input a pooling difference is measured on: `CHECK_IMAGES` random images in [-1, 1]."""
    generator = torch.Generator().manual_seed(CHECK_SEED)
    return torch.rand(CHECK_IMAGES, 3, image_size, image_size, generator=generator) * 2 - 1


def pooling_note(model: InceptionV3, project: str, peer_counts_padding: bool) -> str | None:
    """None when `project`'s network is `model`'s; else how far apart they are, measured, and why.

    The peer's network is this model with the peer's pooling (`convert.with_pooling`), which the
    tests check against the peer's own logits.
    """
    if counts_padding(model) == peer_counts_padding:
        return None
    peer = with_pooling(model, count_padding=peer_counts_padding)
    images = check_images(model.config.image_size)
    with torch.no_grad():
        ours, theirs = model(images), peer(images)
    agree = int((ours.argmax(1) == theirs.argmax(1)).sum())
    gap, largest = float((ours - theirs).abs().max()), float(ours.abs().max())
    if peer_counts_padding:
        why = (
            f"{whose(project)} Mixed blocks average their 3x3 pools over the zero padding too, TF-Slim's and "
            "inception3's (which these weights were trained with) over the real pixels only"
        )
    else:
        why = (
            f"{whose(project)} Mixed blocks average their 3x3 pools over the real pixels only, torchvision's "
            "and timm's (which these weights were trained with) over the zero padding too"
        )
    return (
        f"not the same network: {why}; on {CHECK_IMAGES} fixed random images the exported one agrees "
        f"on the top-1 class for {agree} of {CHECK_IMAGES} and its logits differ by up to {gap:.3g} "
        f"(the largest is {largest:.3g})"
    )


def export_checkpoint(
    checkpoint: Path,
    fmt: str,
    output: Path,
    *,
    use_ema: bool = True,
    force: bool = False,
    weights_format: str | None = None,
    notes: Callable[[str], None] | None = None,
) -> Path:
    """Write `checkpoint`'s network (EMA weights unless `use_ema=False`) to `output` as `fmt`.

    `checkpoint` is any weights file `weights.read_weights` reads (`weights_format`: how, when its
    contents do not say); its evaluation preprocessing goes with it. `notes` gets a line for each
    thing another project's format cannot hold and for a network that differs (`pooling_note`).

    The file appears whole or not at all (written under a temporary name, then renamed), with the
    mode any new file gets. `output` passes `files.check_output`: never the checkpoint itself
    (whatever its spelling or links), a directory, or a run's or dataset's own file; an existing
    file is replaced only with `force`. `hf` writes a folder: new or existing, its two files pass
    the same rule.
    """
    if fmt not in FORMATS:
        raise Inception3Error(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    output, checkpoint = Path(output), Path(checkpoint)
    require_directory(output.parent, "directory", "create it first or choose another --output")
    inputs = {"the checkpoint being exported": checkpoint}
    if checkpoint.is_dir():  # a model folder: its weights file is what must not be written over
        inputs["the weights being exported"] = checkpoint / HF_WEIGHTS
    targets = _targets(fmt, output)
    for target in targets:
        check_output(target, force=force, example=EXAMPLES.get(fmt, f"model.{fmt}"), inputs=inputs)
    model, meta = load_model(checkpoint, use_ema=use_ema, weights_format=weights_format)
    meta = dataclasses.replace(
        meta,
        class_names=meta.class_names or tuple(str(i) for i in range(model.config.num_classes)),
        eval_preprocessing=choose_preprocessing(None, meta.eval_preprocessing),
    )
    if fmt in PEERS:
        writer = cast("PeerWriter", importlib.import_module(PEERS[fmt]))
        for line in _export_peer(writer, model, meta, output, fmt):
            if notes is not None:
                notes(line)
        return output
    write = {"onnx": export_onnx, "torchscript": export_torchscript, "safetensors": export_safetensors}[fmt]
    with atomic_write(output) as f, interrupts_win():  # nothing written after a Ctrl-C
        write(model, f, meta)
    return output


def _targets(fmt: str, output: Path) -> list[Path]:
    """The files `fmt` writes at `output`, refused in one line where the format needs another name."""
    from inception3.weights.keras import SUFFIX

    if fmt == "keras" and not output.name.endswith(SUFFIX):
        raise Inception3Error(
            f"{output}: Keras' load_weights takes a weights file only by its {SUFFIX} ending; "
            f"name it {output.name.split('.')[0] or 'model'}{SUFFIX}"
        )
    if fmt != "hf":
        return [output]
    if output.exists() and not output.is_dir():
        raise Inception3Error(
            f"{output}: is {what_is_at(output)}; --format hf writes a folder: give a new or existing folder"
        )
    from inception3.weights.hf import FILES

    return [output / name for name in FILES]


def _export_peer(
    writer: PeerWriter, model: InceptionV3, meta: WeightsMeta, output: Path, fmt: str
) -> list[str]:
    """Another project's network at `output`, after the checks that need no writing; the notes."""
    require_full_width(model.config, writer.PROJECT)  # refused before anything is written
    difference = pooling_note(model, writer.PROJECT, writer.COUNTS_PADDING)
    if fmt == "hf":  # each of the folder's files appears whole, the config last
        output.mkdir(exist_ok=True)
        with interrupts_win():
            lost = writer.write(model, output, meta)
    else:
        with atomic_write(output) as f, interrupts_win():  # nothing written after a Ctrl-C
            lost = writer.write(model, f, meta)
    return lost + ([difference] if difference else [])
