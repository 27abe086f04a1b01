"""Operator calls per training step, by part, against what the network itself needs (forward+backward).

Every call the step makes to an aten operator costs a dispatch on the host and, on an accelerator,
at least one kernel launch. The forward and backward of the network need theirs; everything else a
step does (augmentation, the optimizer, the moving averages, the loop's bookkeeping) should take a
handful, however many tensors the network has.

Method: `torch.profiler` on the CPU records every aten call of one steady-state step (after a
warm-up step that makes the optimizer's state), of the full network (depth 1.0, 299 px, batch 2).
Only top-level calls are counted, those not made from inside another aten call: on the CPU a
`_foreach_*` op runs its per-tensor fallback under itself, which on CUDA is one fused kernel per
chunk of tensors, and a composite op (`stack` calling `cat`) is one call from the step's side. The
whole step is profiled as the loop runs it (`train_step`, then the moving-average update and the
loop's per-step lines: the learning rate set, the non-finite flag), and each part alone on the same
state with the same seeds: augmentation (the device-side ops), forward+backward (network, loss,
backward), the optimizer's `step()`, the moving averages' `update()`. Bookkeeping is the whole step
less those parts: loss sums, zero_grad, the seeds, the learning rate. `--verbose` lists the
bookkeeping calls by name. Log, summary and checkpoint steps (every `log_every` steps and rarer)
add their own reads and are not counted. Counts do not depend on the machine's load.

    python benchmarks/ops_per_step.py [--optimizers rmsprop sgd adamw] [--batch 2] [--size 299]
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from inception3.config import TrainConfig
from inception3.data.augment import build_pipeline
from inception3.model import InceptionV3
from inception3.train.ema import ExponentialMovingAverage
from inception3.train.optim import build_optimizer, learning_rate, param_groups, set_learning_rate
from inception3.train.options import make_config
from inception3.train.step import AUGMENT_STREAM, DROPOUT_STREAM, inception_loss, step_seed, train_step

PARTS = ("augmentation", "forward+backward", "optimizer", "moving averages", "bookkeeping")


def top_level_calls(fn: Callable[[], object]) -> Counter[str]:
    """The aten calls `fn` makes that no other aten call made, by name."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    calls: Counter[str] = Counter()
    for event in prof.events():
        if not event.name.startswith("aten::"):
            continue
        parent = event.cpu_parent
        while parent is not None and not parent.name.startswith("aten::"):
            parent = parent.cpu_parent
        if parent is None:
            calls[event.name] += 1
    return calls


def count_step(cfg: TrainConfig) -> dict[str, Counter[str]]:
    """Calls per part of one steady-state step of `cfg`'s trainer on the CPU."""
    torch.manual_seed(cfg.seed)
    model = InceptionV3.from_config(cfg.model_config(1000)).to(memory_format=torch.channels_last)
    model.train()
    ema = ExponentialMovingAverage(model, cfg.ema_decay)
    optimizer = build_optimizer(param_groups(model, cfg), cfg)
    size = cfg.model.image_size
    images = torch.randint(0, 256, (cfg.batch_size, 3, size, size), dtype=torch.uint8)
    labels = torch.randint(0, 1000, (cfg.batch_size,))
    non_finite = torch.zeros((), dtype=torch.bool)

    def whole(step: int) -> None:  # as train/loop.py's _loop runs a step that is no log or summary step
        nonlocal non_finite
        set_learning_rate(optimizer, learning_rate(step, cfg, 1_281_167))
        result = train_step(model, optimizer, images, labels, step, 0, cfg)
        ema.update(model, step)
        non_finite |= ~torch.isfinite(result.total)

    def augment(step: int) -> torch.Tensor:
        generator = torch.Generator()
        generator.manual_seed(step_seed(cfg.seed, step, 0, AUGMENT_STREAM))
        x = build_pipeline(cfg.augment)(images, generator)
        return x.contiguous(memory_format=torch.channels_last)

    def forward_backward(x: torch.Tensor, step: int) -> None:
        torch.manual_seed(step_seed(cfg.seed, step, 0, DROPOUT_STREAM))
        total, _, _ = inception_loss(model(x), labels, cfg)
        total.backward()

    whole(0)  # warm-up: the optimizer's state, the allocator
    step = 1
    counts = {"whole": top_level_calls(lambda: whole(step))}
    x = augment(step)
    counts["augmentation"] = top_level_calls(lambda: augment(step))
    optimizer.zero_grad(set_to_none=True)
    counts["forward+backward"] = top_level_calls(lambda: forward_backward(x, step))
    counts["optimizer"] = top_level_calls(optimizer.step)
    counts["moving averages"] = top_level_calls(lambda: ema.update(model, step))
    rest = Counter(counts["whole"])
    for part in PARTS[:-1]:
        rest.subtract(counts[part])
    counts["bookkeeping"] = +rest
    if any(n < 0 for n in rest.values()):
        raise RuntimeError(f"a part made calls the whole step did not: {-rest}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--optimizers", nargs="+", default=["rmsprop", "sgd", "adamw"])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=299)
    parser.add_argument("--depth", type=float, default=1.0)
    parser.add_argument("--verbose", action="store_true", help="list the bookkeeping calls by name")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = {}
    for name in args.optimizers:
        cfg = make_config(
            {
                "optimizer": name,
                "batch_size": args.batch,
                "image_size": args.size,
                "depth_multiplier": args.depth,
                "device": "cpu",
                "precision": "fp32",
                "channels_last": True,
                "nesterov": name == "sgd",
            }
        )
        counts = count_step(cfg)
        rows[name] = {part: counts[part].total() for part in PARTS}
        if args.verbose:
            print(f"{name} bookkeeping: {dict(counts['bookkeeping'])}")
            print(f"{name} optimizer: {dict(counts['optimizer'])}")
    print(f"aten calls per step (top level), depth {args.depth:g}, {args.size} px, batch {args.batch}")
    print(f"| part | {' | '.join(rows)} |")
    print("|---|" + "---:|" * len(rows))
    for part in PARTS:
        print(f"| {part} | {' | '.join(str(r[part]) for r in rows.values())} |")
    outside = {n: sum(r[p] for p in PARTS if p != "forward+backward") for n, r in rows.items()}
    lean = {n: r["optimizer"] + r["moving averages"] + r["bookkeeping"] for n, r in rows.items()}
    print(f"| outside forward+backward | {' | '.join(str(v) for v in outside.values())} |")
    print(f"| optimizer + averages + bookkeeping | {' | '.join(str(v) for v in lean.values())} |")


if __name__ == "__main__":
    main()
