"""inception3: Google's Inception v3 training system, rebuilt on PyTorch."""

from inception3.errors import Inception3Error
from inception3.model import InceptionV3

__all__ = ["Inception3Error", "InceptionV3"]
__version__ = "0.1.0"
