"""inception3: Google's Inception v3 training system, rebuilt on PyTorch."""

from inception3.errors import Inception3Error

__all__ = ["Inception3Error", "InceptionV3"]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """`inception3.InceptionV3` on first use: the CLI starts (and answers Ctrl-C) before torch loads."""
    if name == "InceptionV3":
        from inception3.model import InceptionV3

        return InceptionV3
    raise AttributeError(f"module 'inception3' has no attribute {name!r}")
