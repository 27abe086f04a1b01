"""TF-Slim's own Inception v3 graph and ours give the same logits from one TensorFlow checkpoint.

Needs TensorFlow and tf_slim (not project dependencies): skipped without them. TF-Slim's
`nets/inception_v3.py` is built in graph mode under `inception_v3_arg_scope()`, 1001 classes, random
weights and random batch-norm statistics, saved with `tf.compat.v1.train.Saver`, and read back by
`load_tf_slim`, which drops the background class.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.models  # noqa: F401 - before TensorFlow: imported after it, it crashed the process

tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed (only this comparison needs it)")
try:  # TensorFlow ≥ 2.16 takes its v1 layers from tf_keras, which moved them under tf_keras.src
    legacy = importlib.import_module("tf_keras.src.legacy_tf_layers")
    sys.modules.setdefault("tf_keras.legacy_tf_layers", legacy)
    for _name in ("base", "convolutional", "core", "normalization", "pooling"):
        sys.modules.setdefault(
            f"tf_keras.legacy_tf_layers.{_name}",
            importlib.import_module(f"tf_keras.src.legacy_tf_layers.{_name}"),
        )
except ImportError:
    pass
tf_slim = pytest.importorskip("tf_slim", reason="tf_slim is not installed (pip install tf-slim)")

from tf_slim.nets import inception_v3  # noqa: E402

from inception3.weights import load_tf_slim, read_weights  # noqa: E402

TOLERANCE = 1e-4  # max abs difference of the logits (float32; logits of order 10)


def _slim_checkpoint(directory: Path, size: int, depth_multiplier: float) -> tuple[np.ndarray, np.ndarray]:
    """Save a random TF-Slim Inception v3; return the input images (NHWC) and TF-Slim's logits."""
    rng = np.random.default_rng(0)
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [2, size, size, 3])
        with tf_slim.arg_scope(inception_v3.inception_v3_arg_scope()):
            logits, _ = inception_v3.inception_v3(
                images, num_classes=1001, is_training=False, depth_multiplier=depth_multiplier
            )
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for variable in tf.compat.v1.global_variables():
                shape, name = variable.shape.as_list(), variable.op.name
                if name.endswith("moving_mean"):
                    variable.load(rng.normal(0, 0.2, shape).astype(np.float32), session)
                elif name.endswith("moving_variance"):
                    variable.load(rng.uniform(0.5, 1.5, shape).astype(np.float32), session)
                elif name.endswith(("beta", "biases")):
                    variable.load(rng.normal(0, 0.1, shape).astype(np.float32), session)
            batch = rng.uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
            expected = session.run(logits, {images: batch})
            tf.compat.v1.train.Saver().save(session, str(directory / "model.ckpt"))
    return batch, expected


@pytest.mark.parametrize(("size", "depth_multiplier"), [(299, 1.0), (160, 0.25)])
def test_tf_slim_graph_and_ours_give_the_same_logits(tmp_path, size, depth_multiplier):
    batch, expected = _slim_checkpoint(tmp_path, size, depth_multiplier)
    model = load_tf_slim(tmp_path / "model.ckpt", strict=True)
    assert model.config.depth_multiplier == depth_multiplier and model.config.num_classes == 1000
    with torch.no_grad():
        got = model(torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()).numpy()
    assert np.abs(expected).max() > 1.0
    assert np.abs(got - expected[:, 1:]).max() < TOLERANCE  # the background column dropped
    meta = read_weights(tmp_path / "model.ckpt.index").meta
    assert meta.source == "TF-Slim" and meta.eval_preprocessing == "inception"
