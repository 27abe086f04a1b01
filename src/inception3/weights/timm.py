"""timm's Inception v3 (`inception_v3` and its `tf_`/`adv_`/`gluon_` variants): torchvision's names.

Its files cannot be told from torchvision's, so it is never detected: `--weights-format timm` says
so, and the weights get timm's evaluation preprocessing. TF-ported weights keep 1001 classes; the
background row is dropped.
"""

from __future__ import annotations

from inception3.weights import torchvision
from inception3.weights.file import ReadOptions, WeightsFile
from inception3.weights.meta import Weights

DESCRIPTION = "timm's Inception v3"
ALSO: tuple[str, ...] = ()
detect = torchvision.detect  # the same layout; detection meets torchvision first and reads it as such


def read(file: WeightsFile, options: ReadOptions) -> Weights:
    """The file read as torchvision's, its meta timm's."""
    return torchvision.read_as(file, options, "timm")
