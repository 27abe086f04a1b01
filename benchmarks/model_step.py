"""Training-step and inference time of inception3's InceptionV3 against torchvision's inception_v3.

Both models run in one process at the same batch and image size, interleaved step by step so that
load from other processes hits both alike; the table gives medians and the ratio ours / torchvision
(below 1.0 means inception3 is faster). Each variant is timed in contiguous (NCHW) and
channels_last memory formats.

    python benchmarks/model_step.py [--batch 8] [--size 299] [--steps 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torchvision
from torch import nn

from inception3.model import InceptionV3


def _train_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer
) -> Callable[[], None]:
    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        logits, aux = model(x)
        loss = nn.functional.cross_entropy(logits, y) + 0.4 * nn.functional.cross_entropy(aux, y)
        loss.backward()
        optimizer.step()

    return step


def _inference(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        with torch.inference_mode():
            model(x)

    return step


def _time_pair(ours: Callable[[], None], theirs: Callable[[], None], steps: int) -> tuple[float, float]:
    ours(), theirs()  # warm-up: allocator, kernel selection
    a, b = [], []
    for _ in range(steps):
        for fn, times in ((ours, a), (theirs, b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=299)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant (median)")
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.rand(args.batch, 3, args.size, args.size) * 2 - 1
    y = torch.randint(0, 1000, (args.batch,))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
        f"{args.size}x{args.size}, median of {args.steps} steps"
    )
    print(f"{'what':<28} {'inception3 ms':>14} {'torchvision ms':>15} {'ratio':>7}")
    for memory_format in (torch.contiguous_format, torch.channels_last):
        ours = InceptionV3(image_size=args.size).to(memory_format=memory_format)
        theirs = torchvision.models.inception_v3(
            weights=None, init_weights=False, aux_logits=True, transform_input=False
        ).to(memory_format=memory_format)
        xf = x.contiguous(memory_format=memory_format)
        tag = "channels_last" if memory_format is torch.channels_last else "NCHW"
        for what in ("train step", "inference"):
            if what == "train step":
                ours.train(), theirs.train()
                a = _train_step(ours, xf, y, torch.optim.SGD(ours.parameters(), lr=0.01, momentum=0.9))
                b = _train_step(theirs, xf, y, torch.optim.SGD(theirs.parameters(), lr=0.01, momentum=0.9))
            else:
                ours.eval(), theirs.eval()
                a, b = _inference(ours, xf), _inference(theirs, xf)
            t_ours, t_theirs = _time_pair(a, b, args.steps)
            print(
                f"{what + ', ' + tag:<28} {t_ours * 1e3:>14.1f} {t_theirs * 1e3:>15.1f} "
                f"{t_ours / t_theirs:>6.2f}x"
            )


if __name__ == "__main__":
    main()
