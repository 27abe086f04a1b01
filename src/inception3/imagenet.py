"""The 1,000 ImageNet-1k classes in the standard order, for weights that come without class names.

`imagenet_classes.txt` lists one class a line: its WordNet synset id, a tab, a readable name. The
order is the sorted synset ids, the label order of torchvision's, timm's, Keras' and (after its
background class 0) TF-Slim's ImageNet weights. The names are torchvision's short ones.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

NUM_CLASSES = 1000


@cache
def imagenet_classes() -> tuple[tuple[str, str], ...]:
    """(synset id, readable name) of each class, by label."""
    text = files("inception3").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    return tuple((synset, name) for synset, name in (line.split("\t") for line in text.splitlines()))


def imagenet_class_names() -> list[str]:
    """The readable name of each class, by label."""
    return [name for _, name in imagenet_classes()]
