"""Keras' `InceptionV3` weights, read with h5py (no TensorFlow) and mapped by Keras' layer order.

Three files hold them:

- the legacy HDF5 weights that `keras.applications` downloads (`inception_v3_weights_tf_dim_ordering_
  tf_kernels.h5` and its `_notop` twin) and Keras 2's `save_weights("x.h5")`: a group per layer, its
  arrays listed in the group's `weight_names` attribute, the layers in the root's `layer_names`; a whole
  model saved as `model.save("x.h5")` has the same groups under `model_weights`, and its config;
- Keras 3's `model.save_weights("x.weights.h5")`: `layers/<class>_<k>/vars/0..n`;
- Keras 3's `model.save("x.keras")`: a zip holding that file as `model.weights.h5`, and `config.json`.

Which layer is which. `keras.applications.inception_v3.conv2d_bn` makes Conv2D (no bias) →
BatchNormalization(scale=False) → ReLU, and Keras numbers layers in the order it makes them (`conv2d`,
`conv2d_1`, …; Keras 2 started at `conv2d_1`). It makes each block's branches in TF-Slim's order
(1×1; the 5×5, 3×3 or 7×7 tower; the double tower; the pool's 1×1) and Mixed_7b/7c's 1×3 before their
3×1, so the k-th convolution and batch norm it made are this model's k-th ConvBN in network order (its
aux head aside: Keras has none). Legacy files name every layer. Keras 3 files key a layer instead by its
class and its place in the model's graph order (`layers/conv2d_12` is the 13th Conv2D of `model.layers`:
depth from the output first, then creation order); recent releases also store the layer's name, and
without it `graph_order` gives that order from this model's blocks. Every shape is checked.

Kernels go from HWIO to OIHW; the `predictions` Dense layer (2048 × classes) becomes the 1×1
`Logits.Conv2d_1c_1x1`. Keras' batch norm epsilon is 0.001, as ours: a file with its config (`.keras`,
a whole-model `.h5`) is checked and its epsilon kept; weights-only files get Keras' default. Keras'
'same' 3×3 average pools in the blocks count only real pixels, as TensorFlow's and this model's do.
A file without the classifier (`include_top=False`) gives a state without the `Logits.` keys: it can
start a fine-tune, not classify.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import Tensor

from inception3.config import BATCH_NORM_EPSILON, IMAGE_SIZE, PEER_BATCH_NORM_EPSILON, ModelConfig
from inception3.errors import Inception3Error
from inception3.model import ConvBN, InceptionV3, Mixed
from inception3.weights.convert import counts_padding, require_full_width
from inception3.weights.file import KERAS_ZIP_WEIGHTS, ReadOptions, WeightsFile, read_member
from inception3.weights.meta import Weights, WeightsMeta

DESCRIPTION = "Keras weights (HDF5 or .keras)"
ALSO: tuple[str, ...] = ()
LOGITS = "Logits.Conv2d_1c_1x1"
# What is read of a `.keras` zip's members at most (`weights.file.read_member`): InceptionV3's config is
# about 0.1 MB and its float32 weights 92 MB, with an optimizer's state a few times that.
MAX_CONFIG_BYTES = 16 << 20
MAX_WEIGHTS_BYTES = 1 << 30
# Keras 3 stores a layer's variables by number, in the order the layer creates them.
# What `write` stores beside the layers (class names, preprocessing, input size, step, as JSON): Keras
# ignores the attribute, inception3 reads it back.
EXPORT_ATTRIBUTE = "inception3"
KERAS3_VARIABLES = {
    "conv2d": ("kernel",),
    "batch_normalization": ("beta", "moving_mean", "moving_variance"),
    "dense": ("kernel", "bias"),
}


@dataclass
class KerasLayer:
    """One Keras layer that has weights: what it is, where it sorts, its arrays by Keras' name."""

    kind: str  # "conv", "bn" or "dense"
    name: str  # what messages call it: the layer's name, or its key in the file
    rank: int  # the number Keras gave it: creation order when named, graph order otherwise
    arrays: dict[str, np.ndarray]


@dataclass
class KerasFile:
    """A Keras weights file's layers and what its config (when it has one) says."""

    layers: list[KerasLayer]
    named: bool  # ranks are creation order (layer names), not Keras 3's graph order (file keys)
    epsilon: float
    image_size: int


def detect(file: WeightsFile) -> bool:
    """Keras' files are told by their signature alone (`weights.file.is_keras_file`)."""
    return file.kind == "keras"


def read(file: WeightsFile, options: ReadOptions) -> Weights:
    """The file's weights; without the top, no `Logits.` keys and no config (it cannot classify).

    A file `write` made gives back the class names, preprocessing and input size it stored.
    """
    state, cfg, top = read_keras(file.path)
    meta = WeightsMeta("keras", eval_preprocessing="keras", include_top=top)
    exported = _exported(file.path)
    if exported:
        names = exported.get("class_names")
        meta = WeightsMeta(
            str(exported.get("source", "inception3")),  # torchvision's: load_model pools as it did
            step=int(exported.get("step", 0)),
            class_names=tuple(names) if names else None,
            ema=bool(exported.get("ema", False)),
            eval_preprocessing=str(exported.get("eval_preprocessing", "keras")),
            include_top=top,
        )
        cfg = dataclasses.replace(cfg, image_size=int(exported.get("image_size", cfg.image_size)))
    return Weights(state, cfg if top else None, meta)


def read_keras(path: Path) -> tuple[dict[str, Tensor], ModelConfig, bool]:
    """A Keras InceptionV3 weights file as this model's state, its config, and whether it has the top.

    Without the top the state lacks the `Logits.` keys and the config's class count is a placeholder.
    """
    saved = _read_file(Path(path))
    convs = _sorted(path, saved.layers, "conv")
    norms = _sorted(path, saved.layers, "bn")
    dense = [layer for layer in saved.layers if layer.kind == "dense"]
    if len(dense) > 1:
        raise Inception3Error(
            f"{path}: {len(dense)} Dense layers; keras.applications.InceptionV3 has one classifier "
            "(`predictions`): save the InceptionV3 model itself, not a model built around it"
        )
    classes = int(dense[0].arrays["kernel"].shape[1]) if dense else 1
    cfg = ModelConfig(
        num_classes=classes,
        aux_logits=False,
        image_size=saved.image_size,
        batch_norm_epsilon=saved.epsilon,
    )
    with torch.device("meta"):
        model = InceptionV3.from_config(cfg)
    target = model.state_dict()
    ours = creation_order(model) if saved.named else graph_order(model)
    if not (len(convs) == len(norms) == len(ours)):
        raise Inception3Error(
            f"{path}: {len(convs)} Conv2D and {len(norms)} BatchNormalization layers, "
            f"keras.applications.InceptionV3 has {len(ours)} of each; not its weights (for an InceptionV3 "
            "inside another model, save the inner model's weights)"
        )
    state: dict[str, Tensor] = {}
    for mine, conv, norm in zip(ours, convs, norms, strict=True):
        kernel = conv.arrays["kernel"]
        _put(path, state, target, f"{mine}.weight", kernel.transpose(3, 2, 0, 1), conv.name)
        for var in KERAS3_VARIABLES["batch_normalization"]:  # our buffers have Keras' names
            _put(path, state, target, f"{mine}.BatchNorm.{var}", norm.arrays[var], norm.name)
    if dense:
        kernel, bias = dense[0].arrays["kernel"], dense[0].arrays["bias"]
        _put(path, state, target, f"{LOGITS}.weight", kernel.T[:, :, None, None], dense[0].name)
        _put(path, state, target, f"{LOGITS}.bias", bias, dense[0].name)
    return state, cfg, bool(dense)


def _put(
    path: Path, state: dict[str, Tensor], target: dict[str, Tensor], key: str, array: np.ndarray, layer: str
) -> None:
    """One array into the state under `key`, if its shape is the model's."""
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if tensor.shape != target[key].shape:
        raise Inception3Error(
            f"{path}: Keras layer {layer} has shape {list(tensor.shape)} where this model's {key} "
            f"is {list(target[key].shape)}; not keras.applications.InceptionV3's weights"
        )
    state[key] = tensor


def _sorted(path: Path, layers: list[KerasLayer], kind: str) -> list[KerasLayer]:
    """The layers of one kind in Keras' numbering; two with one number is a file from two models."""
    chosen = sorted((layer for layer in layers if layer.kind == kind), key=lambda layer: layer.rank)
    for before, after in zip(chosen, chosen[1:], strict=False):
        if before.rank == after.rank:
            raise Inception3Error(
                f"{path}: layers {before.name} and {after.name} share a number; "
                "not one keras.applications.InceptionV3"
            )
    return chosen


def creation_order(model: InceptionV3) -> list[str]:
    """This model's ConvBN layers in network order, the aux head aside: Keras' creation order."""
    convs = [name for name, module in model.named_modules() if isinstance(module, ConvBN)]
    return [name for name in convs if not name.startswith("AuxLogits.")]


def graph_order(model: InceptionV3) -> list[str]:
    """The same layers in the order of Keras' `model.layers`, which Keras 3 files number by.

    Keras sorts a functional model's layers by depth (layers between them and the output), deepest
    first, ties in traversal order, which for these blocks is creation order. Blocks follow each other,
    so only the layers inside a block change places: a conv2d_bn is 3 layers (conv, batch norm, ReLU),
    and a branch that ends in two parallel convolutions (Mixed_7b/7c) has one more, their concatenate.
    """
    order: list[str] = []
    for name, block in model.named_children():
        if isinstance(block, ConvBN):
            order.append(name)
        elif isinstance(block, Mixed):
            ranked: list[tuple[int, int, str]] = []
            for branch_name, branch in block.items():
                steps = [step for step in branch.plan if isinstance(branch[step[0]], ConvBN)]
                forked = bool(steps) and len(steps[-1]) > 1
                for i, step in enumerate(steps):
                    depth = 3 * (len(steps) - i) + forked
                    ranked += [(-depth, len(ranked), f"{name}.{branch_name}.{conv}") for conv in step]
            order += [key for _, _, key in sorted(ranked)]
    return order


# ---------------------------------------------------------------------------------------------
# The files.


def _read_file(path: Path) -> KerasFile:
    """The layers of any of the three files, with the config's epsilon and input size."""
    try:
        import h5py
    except ImportError:
        raise Inception3Error(
            f"{path}: reading Keras weights needs h5py: pip install h5py (TensorFlow is not needed)"
        ) from None
    config: Any = None
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if "config.json" in archive.namelist():
                    config = json.loads(read_member(path, archive, "config.json", MAX_CONFIG_BYTES))
                data = read_member(path, archive, KERAS_ZIP_WEIGHTS, MAX_WEIGHTS_BYTES)
            handle = h5py.File(io.BytesIO(data), "r")
        else:
            handle = h5py.File(path, "r")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise Inception3Error(f"{path}: not a readable Keras weights file ({error})") from None
    with handle:
        if "layers" in handle:
            found = _keras3_layers(path, handle["layers"])
            named = bool(found) and all(layer.name is not None for layer in found)
            layers = [_ranked(layer, named) for layer in found]
        else:
            group = handle.get("model_weights", handle)
            if "layer_names" not in group.attrs:
                raise Inception3Error(
                    f"{path}: an HDF5 file, but not Keras weights (no layers/ group, no layer_names); "
                    "save them with Keras' save_weights or model.save"
                )
            if "model_config" in handle.attrs:
                config = json.loads(_text(handle.attrs["model_config"]))
            layers, named = _legacy_layers(path, group), True
    epsilon, image_size = _from_config(path, config)
    return KerasFile(layers, named, epsilon, image_size)


@dataclass
class _Keras3Layer:
    """A Keras 3 layer before ranking: its key in the file and its stored name (None if none)."""

    key: str
    name: str | None
    kind: str
    arrays: dict[str, np.ndarray]


def _keras3_layers(path: Path, group: Any) -> list[_Keras3Layer]:
    """`layers/<class>_<k>/vars/0..n`: the class from the key, each variable by its number."""
    layers = []
    for key in group:
        variables = group[key].get("vars")
        if variables is None or not len(variables):
            continue
        kind = re.sub(r"_\d+$", "", key)
        names = KERAS3_VARIABLES.get(kind)
        if names is None or len(variables) != len(names):
            raise Inception3Error(f"{path}: {_unexpected(f'layers/{key}', kind, len(variables))}")
        arrays = {
            name: _array(
                path,
                _member(path, variables, str(i), f"variable {i} ({name}) of Keras layer {key}"),
                f"layers/{key}",
            )
            for i, name in enumerate(names)
        }
        name = variables.attrs.get("name")
        layers.append(_Keras3Layer(key, None if name is None else _text(name), _kind(kind), arrays))
    return layers


def _ranked(layer: _Keras3Layer, named: bool) -> KerasLayer:
    """A Keras 3 layer numbered by its name (creation order) or by its key (graph order)."""
    name = layer.name if named and layer.name is not None else layer.key
    return KerasLayer(layer.kind, name, _number(name), layer.arrays)


def _legacy_layers(path: Path, group: Any) -> list[KerasLayer]:
    """A group per layer, its arrays listed in `weight_names` ("conv2d_1/kernel:0", ...)."""
    layers = []
    for name in (_text(n) for n in group.attrs["layer_names"]):
        layer = _member(path, group, name, f"Keras layer {name}, listed in layer_names,")
        weight_names = [_text(n) for n in layer.attrs.get("weight_names", [])]
        if not weight_names:
            continue
        arrays = {
            w.split("/")[-1].removesuffix(":0"): _array(
                path, _member(path, layer, w, f"weight {w} of Keras layer {name}"), name
            )
            for w in weight_names
        }
        layers.append(KerasLayer(_legacy_kind(path, name, arrays), name, _number(name), arrays))
    return layers


def _member(path: Path, group: Any, name: str, what: str) -> Any:
    """`group[name]`, or one line naming what is missing (a file cut short, or edited by hand)."""
    if name not in group:
        where = f"{group.name.rstrip('/')}/{name}".lstrip("/")
        raise Inception3Error(
            f"{path}: {what} is missing (no {where} in the file); the file is incomplete: save or "
            "download the weights again"
        )
    return group[name]


def _legacy_kind(path: Path, name: str, arrays: dict[str, np.ndarray]) -> str:
    """What a legacy layer is, from its variables: a bias-free conv, a gamma-free batch norm, a Dense."""
    kernel = arrays.get("kernel")
    if set(arrays) == {"kernel"} and kernel is not None and kernel.ndim == 4:
        return "conv"
    if set(arrays) == {"beta", "moving_mean", "moving_variance"}:
        return "bn"
    if set(arrays) == {"kernel", "bias"} and kernel is not None and kernel.ndim == 2:
        return "dense"
    raise Inception3Error(f"{path}: layer {name} holds {', '.join(sorted(arrays))}; {_NOT_INCEPTION}")


_NOT_INCEPTION = (
    "keras.applications.InceptionV3 has bias-free Conv2D, BatchNormalization(scale=False) and one "
    "Dense layer: not its weights"
)


def _unexpected(where: str, kind: str, count: int) -> str:
    if kind == "batch_normalization" and count == 4:
        return f"{where} is a batch norm with a scale (gamma); {_NOT_INCEPTION}"
    return f"{where} ({kind}) holds {count} variables; {_NOT_INCEPTION}"


def _kind(keras_class: str) -> str:
    return {"conv2d": "conv", "batch_normalization": "bn", "dense": "dense"}[keras_class]


def _array(path: Path, dataset: Any, layer: str) -> np.ndarray:
    if dataset.attrs.get("dtype") == "bfloat16":
        raise Inception3Error(f"{path}: {layer} is stored as bfloat16; save the Keras model in float32")
    return np.asarray(dataset, dtype=np.float32)


def _number(name: str) -> int:
    """Keras' counter in a layer name: `conv2d` 0, `conv2d_12` 12."""
    match = re.search(r"_(\d+)$", name)
    return int(match.group(1)) if match else 0


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _from_config(path: Path, config: Any) -> tuple[float, int]:
    """The batch norms' epsilon and the input size a saved model config states (Keras' defaults without)."""
    if config is None:
        return BATCH_NORM_EPSILON, IMAGE_SIZE
    norms = _layer_configs(config, "BatchNormalization")
    epsilons = {float(c.get("epsilon", BATCH_NORM_EPSILON)) for c in norms}
    if len(epsilons) > 1:
        raise Inception3Error(
            f"{path}: its batch norms use different epsilons ({', '.join(map(str, sorted(epsilons)))}); "
            "keras.applications.InceptionV3 uses one"
        )
    image_size = IMAGE_SIZE
    for c in _layer_configs(config, "InputLayer"):
        shape = c.get("batch_shape") or c.get("batch_input_shape") or []
        sides = shape[1:3] if len(shape) == 4 and shape[-1] == 3 else shape[2:4]
        if len(sides) == 2 and sides[0] and sides[0] == sides[1]:
            image_size = int(sides[0])
    return (epsilons.pop() if epsilons else BATCH_NORM_EPSILON), image_size


def _layer_configs(config: Any, class_name: str) -> Iterator[dict]:
    """The `config` of every layer of `class_name` in a (nested) Keras model config."""
    if isinstance(config, dict):
        if config.get("class_name") == class_name and isinstance(config.get("config"), dict):
            yield config["config"]
        for value in config.values():
            yield from _layer_configs(value, class_name)
    elif isinstance(config, list):
        for value in config:
            yield from _layer_configs(value, class_name)


# ---------------------------------------------------------------------------------------------
# Writing: `inception3 export --format keras`.

PROJECT = "Keras"
COUNTS_PADDING = False  # AveragePooling2D(padding="same") averages the real pixels, as TF-Slim's
SUFFIX = ".weights.h5"  # what Keras 3's `load_weights` takes as a weights-only file


def write(model: InceptionV3, output: BinaryIO, meta: WeightsMeta) -> list[str]:
    """A Keras 3 `.weights.h5` that `keras.applications.InceptionV3(weights=None, classes=N)` loads
    with `load_weights`; returns what it cannot hold.

    Keras 3's layout (`layers/<class>_<k>/vars/0..n`, k in `model.layers` order: `graph_order`), each
    `vars` named after the layer Keras would make (creation order), kernels HWIO, the logits the
    `predictions` Dense. Batch norms get their moving variance shifted by the difference of the
    epsilons (ours − Keras' 0.001), which normalises alike.
    """
    import h5py

    require_full_width(model.config, PROJECT)
    state = {key: value.detach().float().numpy() for key, value in model.state_dict().items()}
    shift = model.config.batch_norm_epsilon - PEER_BATCH_NORM_EPSILON
    made = {name: i for i, name in enumerate(creation_order(model))}
    exported = {
        "source": meta.source if counts_padding(model) else "inception3",  # whose pooling, read back
        "class_names": list(meta.class_names or ()),
        "eval_preprocessing": meta.eval_preprocessing,
        "image_size": model.config.image_size,
        "step": meta.step,
        "ema": meta.ema,
    }
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.attrs[EXPORT_ATTRIBUTE] = json.dumps(exported)
        f.create_group("vars").attrs["name"] = "inception_v3"  # the model's own variables: none
        layers = f.create_group("layers")
        for k, key in enumerate(graph_order(model)):
            kernel = state[f"{key}.weight"].transpose(2, 3, 1, 0)
            _write_layer(layers, _numbered("conv2d", k), _numbered("conv2d", made[key]), [kernel])
            norm = [state[f"{key}.BatchNorm.{var}"] for var in KERAS3_VARIABLES["batch_normalization"]]
            norm[2] = norm[2] + shift
            name = _numbered("batch_normalization", made[key])
            _write_layer(layers, _numbered("batch_normalization", k), name, norm)
        logits = state[f"{LOGITS}.weight"][:, :, 0, 0].T
        _write_layer(layers, "dense", "predictions", [logits, state[f"{LOGITS}.bias"]])
    output.write(buffer.getvalue())
    if model.AuxLogits is None:
        return []
    return ["the aux head is left out: keras.applications.InceptionV3 has none (inference does not use it)"]


def _numbered(kind: str, k: int) -> str:
    """Keras' k-th name for a layer class: `conv2d`, `conv2d_1`, ..."""
    return f"{kind}_{k}" if k else kind


def _write_layer(layers: Any, key: str, name: str, arrays: list[np.ndarray]) -> None:
    variables = layers.create_group(key).create_group("vars")
    variables.attrs["name"] = name
    for i, array in enumerate(arrays):
        variables.create_dataset(str(i), data=np.ascontiguousarray(array, dtype=np.float32))


def _exported(path: Path) -> dict:
    """What `write` stored in a `.weights.h5` (`EXPORT_ATTRIBUTE`); empty for Keras' own files."""
    import h5py

    if zipfile.is_zipfile(path):
        return {}
    with h5py.File(path, "r") as f:
        text = f.attrs.get(EXPORT_ATTRIBUTE)
    if text is None:
        return {}
    try:
        info = json.loads(_text(text))
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise Inception3Error(
            f"{path}: its '{EXPORT_ATTRIBUTE}' attribute is not the JSON object inception3 export writes; "
            "export the weights again"
        )
    return info
