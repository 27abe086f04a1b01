"""The named evaluation preprocessings, pixel by pixel against each source project's own code.

torchvision's and timm's transforms and Keras' load_img run on the same decoded image; the original's
(TF1 `resize_bilinear`, no half-pixel centres) against a NumPy reference written from TensorFlow's
definition, as TensorFlow is not a test dependency.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw
import pytest
import torch
import torch.nn.functional as F

from inception3.data.augment import scale_to_unit
from inception3.data.crop import resize_bilinear
from inception3.data.decode import decode_image
from inception3.data.preprocess import PREPROCESSINGS, choose_preprocessing, decode, prepare
from inception3.errors import Inception3Error

SIZES = [(375, 500), (500, 375), (299, 299), (200, 640)]  # (height, width): landscape, portrait, ...


def _photo(height: int, width: int, seed: int) -> bytes:
    """A photo-like JPEG: colour gradients, noise and a few filled shapes with hard edges."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    pixels = np.stack([200 * x + 30, 180 * y + 40, 120 * (1 - x) * y + 60], axis=-1)
    pixels += rng.normal(0, 12, pixels.shape)
    image = PIL.Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = PIL.ImageDraw.Draw(image)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, width - 20)), int(rng.integers(0, height - 20))
        box = (x0, y0, x0 + int(rng.integers(10, width // 2)), y0 + int(rng.integers(10, height // 2)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module", params=SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
def photo(request) -> bytes:
    height, width = request.param
    return _photo(height, width, seed=height + width)


def _pil(encoded: bytes) -> PIL.Image.Image:
    return PIL.Image.open(io.BytesIO(encoded)).convert("RGB")


def _unit(name: str, encoded: bytes, size: int = 299) -> torch.Tensor:
    """Our network input [3, S, S] in [-1, 1] for `encoded` under preprocessing `name`."""
    return scale_to_unit(prepare(decode(encoded, name), size, name)[None])[0]


def test_torchvision_is_its_weights_transform_then_its_transform_input(photo):
    from torchvision.models import Inception_V3_Weights
    from torchvision.models.inception import Inception3

    transform = Inception_V3_Weights.IMAGENET1K_V1.transforms()
    assert (transform.resize_size, transform.crop_size) == ([342], [299])
    with torch.device("meta"):
        net = Inception3(transform_input=True, aux_logits=False, init_weights=False)
    expected = net._transform_input(transform(_pil(photo))[None])[0]  # what torchvision's net computes on
    ours = _unit("torchvision", photo)
    assert ours.shape == (3, 299, 299)
    assert (ours - expected).abs().max() < 2e-6  # the same bytes; float32 rounding of mean/std only


def test_timm_is_its_inception_v3_eval_transform(photo):
    timm_data = pytest.importorskip("timm.data")
    from timm.models import get_pretrained_cfg

    cfg = timm_data.resolve_data_config(pretrained_cfg=get_pretrained_cfg("inception_v3.tf_in1k").to_dict())
    assert (cfg["crop_pct"], cfg["interpolation"], cfg["mean"]) == (0.875, "bicubic", (0.5, 0.5, 0.5))
    expected = timm_data.create_transform(**cfg)(_pil(photo))
    assert (_unit("timm", photo) - expected).abs().max() < 1e-6


def test_keras_is_load_img_then_preprocess_input(photo, tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    from keras.applications.inception_v3 import preprocess_input

    path = Path(tmp_path / "photo.jpg")
    path.write_bytes(photo)
    array = keras.utils.img_to_array(keras.utils.load_img(path, target_size=(299, 299)))
    expected = torch.from_numpy(np.asarray(preprocess_input(array))).permute(2, 0, 1)
    assert (_unit("keras", photo) - expected).abs().max() < 1e-6


def _tf1_resize_bilinear(image: np.ndarray, size: int, half_pixel_centers: bool = False) -> np.ndarray:
    """TensorFlow's resize_bilinear(align_corners=False) from its definition, in float64, pixel by pixel:
    output pixel i samples source coordinate i * in / out (TF2: (i + 0.5) * in / out - 0.5)."""
    channels, height, width = image.shape
    out = np.empty((channels, size, size))
    for i in range(size):
        sy = (i + 0.5) * height / size - 0.5 if half_pixel_centers else i * height / size
        y0 = int(np.floor(sy))
        y1, wy = min(y0 + 1, height - 1), sy - y0
        y0 = max(y0, 0)
        for j in range(size):
            sx = (j + 0.5) * width / size - 0.5 if half_pixel_centers else j * width / size
            x0 = int(np.floor(sx))
            x1, wx = min(x0 + 1, width - 1), sx - x0
            x0 = max(x0, 0)
            top = image[:, y0, x0] * (1 - wx) + image[:, y0, x1] * wx
            bottom = image[:, y1, x0] * (1 - wx) + image[:, y1, x1] * wx
            out[:, i, j] = top * (1 - wy) + bottom * wy
    return out


def test_inception_is_tf_central_crop_then_tf1_resize_bilinear_unrounded(photo):
    pixels = decode_image(photo)  # TensorFlow's decoder: libjpeg-turbo's integer fast DCT
    height, width = pixels.shape[1:]
    crop = pixels[:, height // 16 : height - height // 16, width // 16 : width - width // 16]
    expected = _tf1_resize_bilinear(crop.double().numpy() / 255, 75) * 2 - 1  # TF-Slim: [0, 1], -0.5, ×2
    ours = _unit("inception", photo, 75)
    assert prepare(pixels, 75, "inception").dtype == torch.float32  # TensorFlow does not round either
    # TensorFlow's (and our) float32 source coordinates against float64 here: about 1e-5 at most
    assert np.abs(ours.double().numpy() - expected).max() < 5e-5


def test_tf1_resize_has_no_half_pixel_centres_and_tf2_has():
    image = torch.randint(0, 256, (3, 37, 53), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    reference = _tf1_resize_bilinear(image.double().numpy(), 29)
    tf1 = resize_bilinear(image, 29)
    assert np.abs(tf1.double().numpy() - reference).max() < 1e-3
    tf2 = resize_bilinear(image, 29, half_pixel_centers=True)
    assert np.abs(tf2.double().numpy() - _tf1_resize_bilinear(image.double().numpy(), 29, True)).max() < 1e-3
    torch_half_pixel = F.interpolate(image[None].float(), size=(29, 29), mode="bilinear", align_corners=False)
    assert (tf2 - torch_half_pixel[0]).abs().max() < 1e-3  # PyTorch's align_corners=False is TF2's grid
    assert (tf1 - tf2).abs().mean() > 5, "the grids differ by up to a source pixel"


def test_upscaling_keeps_the_last_row_and_column_inside_the_image():
    image = torch.arange(12, dtype=torch.uint8).reshape(1, 3, 4) * 20
    tf1 = resize_bilinear(image, 8)
    assert tf1[0, 0, 0] == 0 and tf1[0, -1, -1] == image[0, -1, -1]  # TF clamps the upper neighbour
    assert torch.equal(resize_bilinear(image, 8), resize_bilinear(image.float(), 8))


def test_the_weights_name_their_preprocessing_and_an_override_wins():
    assert choose_preprocessing(None, None) == "inception"
    assert choose_preprocessing(None, "torchvision") == "torchvision"
    assert choose_preprocessing("timm", "torchvision") == "timm"
    with pytest.raises(Inception3Error, match="--preprocessing"):
        choose_preprocessing(None, "caffe")
    with pytest.raises(Inception3Error, match="inception, inception-tf2, torchvision, timm, keras"):
        choose_preprocessing("caffe", None)


def test_every_preprocessing_gives_s_by_s_pixels_of_its_type_on_the_byte_scale():
    encoded = _photo(120, 90, seed=3)
    for name, preprocessing in PREPROCESSINGS.items():
        pixels = prepare(decode(encoded, name), 75, name)
        assert pixels.shape == (3, 75, 75) and pixels.dtype == preprocessing.dtype
        assert pixels.float().min() >= 0 and pixels.float().max() <= 255 and pixels.float().std() > 10
