"""A checkpoint's network as a file other runtimes load: ONNX, TorchScript or safetensors.

The moving-average weights are exported by default, as the evaluator uses them. Exported networks
take float32 images [B, 3, S, S] scaled to [-1, 1] (`data.augment.scale_to_unit`) and return the
logits [B, num_classes]; the batch size is free. The class names and the evaluation preprocessing
the weights want (`data/preprocess.py`: how images become those [-1, 1] inputs) travel with the
file: ONNX metadata `class_names` and `eval_preprocessing`, TorchScript extra files
`class_names.json` and `eval_preprocessing.txt`, safetensors metadata of the same names.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import BinaryIO

import torch

from inception3.compat import onnx_exporter_quiet
from inception3.data.preprocess import choose_preprocessing
from inception3.errors import Inception3Error, interrupts_win
from inception3.files import atomic_write, check_output, require_directory
from inception3.model import InceptionV3
from inception3.weights import WeightsMeta, load_model
from inception3.weights.safetensors import to_metadata

FORMATS = ("onnx", "torchscript", "safetensors")
ONNX_OPSET = 18  # the default of torch's ONNX exporter; onnxruntime ≥ 1.14 runs it


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


def export_checkpoint(
    checkpoint: Path,
    fmt: str,
    output: Path,
    *,
    use_ema: bool = True,
    force: bool = False,
    weights_format: str | None = None,
) -> Path:
    """Write `checkpoint`'s network (EMA weights unless `use_ema=False`) to `output` as `fmt`.

    `checkpoint` is any weights file `weights.read_weights` reads (`weights_format`: how, when its
    contents do not say); its evaluation preprocessing goes with it.

    The file appears whole or not at all (written under a temporary name, then renamed), with the
    mode any new file gets. `output` passes `files.check_output`: never the checkpoint itself
    (whatever its spelling or links), a directory, or a run's or dataset's own file; an existing
    file is replaced only with `force`.
    """
    if fmt not in FORMATS:
        raise Inception3Error(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    output = Path(output)
    require_directory(output.parent, "directory", "create it first or choose another --output")
    check_output(
        output,
        force=force,
        example=f"model.{fmt}",
        inputs={"the checkpoint being exported": Path(checkpoint)},
    )
    model, meta = load_model(Path(checkpoint), use_ema=use_ema, weights_format=weights_format)
    meta = dataclasses.replace(
        meta,
        class_names=meta.class_names or tuple(str(i) for i in range(model.config.num_classes)),
        eval_preprocessing=choose_preprocessing(None, meta.eval_preprocessing),
    )
    write = {"onnx": export_onnx, "torchscript": export_torchscript, "safetensors": export_safetensors}[fmt]
    with atomic_write(output) as f, interrupts_win():  # nothing written after a Ctrl-C
        write(model, f, meta)
    return output
