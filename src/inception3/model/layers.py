"""The modules that build Inception v3 from its specification (`spec.py`).

`ConvBN` is TF-Slim's `conv2d` under the original's arg_scope; `Branch` and `Mixed` build a block
from its table; `AuxHead` is the auxiliary classifier. Every layer's batch norm is set by the
`ModelConfig` it is given by name, the one place a model setting lives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inception3.config import (
    AUX_CONV_INIT_STD,
    AUX_LOGITS_INIT_STD,
    CONV_INIT_STD,
    STATISTICS_OF_UNKNOWN_AGE,
    TRUNCATION_STDS,
    ModelConfig,
)
from inception3.errors import Inception3Error
from inception3.model.spec import BlockSpec, Conv, Fork, Layer, Pool


def truncated_normal_(tensor: Tensor, std: float) -> Tensor:
    """TensorFlow's `truncated_normal_initializer`: normal(0, std) re-drawn beyond ±2 std.

    `nn.init.trunc_normal_` takes absolute bounds, so they are scaled by `std` here.
    """
    bound = TRUNCATION_STDS * std
    return nn.init.trunc_normal_(tensor, mean=0.0, std=std, a=-bound, b=bound)


class BatchNorm(nn.Module):
    """TF-Slim's batch norm with `scale=False`: a learned beta, no gamma.

    `decay` is TensorFlow's (moving = decay·moving + (1 − decay)·batch; PyTorch's momentum is
    1 − decay). With `zero_debias`, as the original's `assign_moving_average` in TensorFlow ≥ 1.0,
    the t-th update weighs the batch by (1 − decay) / (1 − decay^t): the moving statistics are the
    debiased average of the batches seen, right from the first step instead of climbing from 0/1
    over ~1/(1 − decay) steps. `num_batches_tracked` counts t (a tensor, so that torch.compile
    does not recompile per step); statistics loaded without a count (other projects' weights,
    older checkpoints) are taken as long averaged (`STATISTICS_OF_UNKNOWN_AGE`), so fine-tuning
    continues them rather than replacing them with its first batch.
    """

    def __init__(self, channels: int, decay: float, epsilon: float, zero_debias: bool = True) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.zeros(channels))
        self.register_buffer("moving_mean", torch.zeros(channels))
        self.register_buffer("moving_variance", torch.ones(channels))
        self.register_buffer("num_batches_tracked", torch.zeros((), dtype=torch.long))
        self.decay = decay
        self.epsilon = epsilon
        self.zero_debias = zero_debias

    @classmethod
    def from_config(cls, channels: int, config: ModelConfig) -> BatchNorm:
        """The batch norm that `config`'s `batch_norm_*` fields describe."""
        return cls(
            channels,
            decay=config.batch_norm_decay,
            epsilon=config.batch_norm_epsilon,
            zero_debias=config.batch_norm_zero_debias,
        )

    def momentum(self) -> Tensor:
        """The weight of the current batch in the moving statistics, counting this update."""
        if not self.zero_debias:
            return torch.full((), 1.0 - self.decay, device=self.num_batches_tracked.device)
        seen = self.num_batches_tracked.double()
        return ((1.0 - self.decay) / (1.0 - torch.pow(self.decay, seen))).float()

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return F.batch_norm(
                x, self.moving_mean, self.moving_variance, None, self.beta, False, 0.0, self.epsilon
            )
        # momentum 1 makes F.batch_norm store the batch's mean and unbiased variance in `mean`/`var`;
        # TF-Slim feeds `tf.nn.moments`' biased one (the mean square deviation over N·H·W values).
        mean, var = torch.zeros_like(self.moving_mean), torch.ones_like(self.moving_variance)
        out = F.batch_norm(x, mean, var, None, self.beta, True, 1.0, self.epsilon)
        values = x.numel() // x.shape[1]
        self.update_statistics(mean, var * ((values - 1) / values))
        return out

    @torch.no_grad()
    def update_statistics(self, mean: Tensor, var: Tensor) -> None:
        """Move the statistics toward a batch's mean and biased variance, as `tf.nn.moments` gives them
        (one update, counted)."""
        self.num_batches_tracked.add_(1)
        weight = self.momentum()
        self.moving_mean.lerp_(mean, weight)
        self.moving_variance.lerp_(var, weight)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object) -> None:
        if prefix + "moving_mean" in state_dict:  # statistics given without their count
            state_dict.setdefault(prefix + "num_batches_tracked", torch.tensor(STATISTICS_OF_UNKNOWN_AGE))
        super()._load_from_state_dict(state_dict, prefix, *args)


def is_update_count(key: str) -> bool:
    """A batch norm's update count (`BatchNorm`): other projects' files and older ones have none."""
    return key.endswith("num_batches_tracked")


class ConvBN(nn.Module):
    """Convolution without bias → batch norm → ReLU: TF-Slim's `conv2d` under the arg_scope."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int],
        *,
        config: ModelConfig,
        stride: int = 1,
        padding: str = "SAME",
        init_std: float = CONV_INIT_STD,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *kernel))
        self.BatchNorm = BatchNorm.from_config(out_channels, config)
        self.stride = stride
        # Every stride-2 layer of the network is VALID, so SAME is symmetric padding of k // 2.
        self.padding = (kernel[0] // 2, kernel[1] // 2) if padding == "SAME" else (0, 0)
        truncated_normal_(self.weight, init_std)

    def forward(self, x: Tensor) -> Tensor:
        x = F.conv2d(x, self.weight, None, self.stride, self.padding)
        return F.relu(self.BatchNorm(x), inplace=True)

    @classmethod
    def from_spec(cls, spec: Conv, in_channels: int, depth: DepthFn, config: ModelConfig) -> ConvBN:
        """The layer a `Conv` of the architecture describes, its depth scaled by `depth`."""
        return cls(
            in_channels,
            depth(spec.depth),
            spec.kernel,
            config=config,
            stride=spec.stride,
            padding=spec.padding,
        )


def pool(spec: Pool) -> nn.Module:
    """The pooling layer a `Pool` of the architecture describes."""
    if spec.kind == "max":
        return nn.MaxPool2d(3, spec.stride)
    # TensorFlow's SAME average pooling divides by the number of real (unpadded) inputs.
    return nn.AvgPool2d(3, spec.stride, padding=1, count_include_pad=False)


class Branch(nn.ModuleDict):
    """One branch of a Mixed block: its layers in order, keyed by their TF-Slim names."""

    def __init__(
        self, layers: tuple[Layer, ...], in_channels: int, depth: DepthFn, config: ModelConfig
    ) -> None:
        super().__init__()
        self.plan: list[tuple[str, ...]] = []
        channels = in_channels
        for layer in layers:
            if isinstance(layer, Pool):
                self[layer.name] = pool(layer)
                self.plan.append((layer.name,))
                continue
            convs = layer.convs if isinstance(layer, Fork) else (layer,)
            for conv in convs:
                self[conv.name] = ConvBN.from_spec(conv, channels, depth, config)
            self.plan.append(tuple(conv.name for conv in convs))
            channels = sum(depth(conv.depth) for conv in convs)
        self.out_channels = channels

    def forward(self, x: Tensor) -> Tensor:
        for step in self.plan:
            outputs = [self[name](x) for name in step]
            x = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)
        return x


class Mixed(nn.ModuleDict):
    """An Inception block: branches run side by side on one input, concatenated on channels."""

    def __init__(self, spec: BlockSpec, in_channels: int, depth: DepthFn, config: ModelConfig) -> None:
        super().__init__({name: Branch(layers, in_channels, depth, config) for name, layers in spec.items()})
        self.out_channels = sum(branch.out_channels for branch in self.values())

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([branch(x) for branch in self.values()], dim=1)


class DepthFn:
    """TF-Slim's `depth(d) = max(int(d * depth_multiplier), min_depth)`."""

    def __init__(self, multiplier: float, min_depth: int) -> None:
        if multiplier <= 0:
            raise Inception3Error(f"depth_multiplier must be > 0, got {multiplier}")
        self.multiplier, self.min_depth = multiplier, min_depth

    def __call__(self, d: int) -> int:
        return max(int(d * self.multiplier), self.min_depth)


def _mixed_6e_side(image_size: int) -> int:
    """Side of Mixed_6e (pixels) for a square input: every VALID layer up to it, by hand."""
    s = (image_size - 3) // 2 + 1  # Conv2d_1a_3x3
    s = s - 2  # Conv2d_2a_3x3
    s = (s - 3) // 2 + 1  # MaxPool_3a_3x3
    s = s - 2  # Conv2d_4a_3x3
    s = (s - 3) // 2 + 1  # MaxPool_5a_3x3
    return (s - 3) // 2 + 1  # Mixed_6a


def aux_kernel(image_size: int) -> int:
    """The aux head's second convolution is k×k for this input size (its weights' shape tells k)."""
    side = _mixed_6e_side(image_size)
    pooled = (side - min(5, side)) // 3 + 1
    return min(5, pooled)


class AuxHead(nn.Module):
    """The auxiliary classifier on Mixed_6e.

    TF-Slim pools 5×5 with stride 3 and shrinks only the 5×5 convolution to the pooled map
    (`_reduced_kernel_size_for_small_input`); its 5×5 VALID pool cannot be built below a 107-px
    input. Below that the head is inception3's own: the pool shrinks to the map too, so a 75×75
    model has a 1×1 kernel. The kernel is fixed from `image_size` at construction; a model fed a
    smaller image zero-pads the pooled map up to it, a larger image is averaged to 1×1 before the
    logits.
    """

    def __init__(self, in_channels: int, depth: DepthFn, config: ModelConfig) -> None:
        """The head for `config`'s classes and image size, on a Mixed_6e of `in_channels`."""
        super().__init__()
        k = aux_kernel(config.image_size)
        self.kernel = k
        self.conv_name = f"Conv2d_2a_{k}x{k}"
        self.Conv2d_1b_1x1 = ConvBN(in_channels, depth(128), (1, 1), config=config)
        self.add_module(
            self.conv_name,
            ConvBN(
                depth(128), depth(768), (k, k), config=config, padding="VALID", init_std=AUX_CONV_INIT_STD
            ),
        )
        self.Conv2d_2b_1x1 = logits_conv(depth(768), config.num_classes, AUX_LOGITS_INIT_STD)

    def forward(self, x: Tensor) -> Tensor:
        # At 299 px: N x 768 x 17 x 17 -> pooled N x 768 x 5 x 5 -> N x 128 x 5 x 5 -> N x 768 x 1 x 1
        kh, kw = min(5, x.shape[-2]), min(5, x.shape[-1])
        x = F.avg_pool2d(x, (kh, kw), stride=3)
        x = self.Conv2d_1b_1x1(x)
        short_h, short_w = max(0, self.kernel - x.shape[-2]), max(0, self.kernel - x.shape[-1])
        if short_h or short_w:
            x = F.pad(x, (short_w // 2, short_w - short_w // 2, short_h // 2, short_h - short_h // 2))
        x = getattr(self, self.conv_name)(x)
        if x.shape[-2] > 1 or x.shape[-1] > 1:
            x = x.mean(dim=(2, 3), keepdim=True)
        return self.Conv2d_2b_1x1(x).flatten(1)  # N x num_classes


def logits_conv(in_channels: int, num_classes: int, std: float) -> nn.Conv2d:
    """A 1×1 convolution with bias to the logits: truncated normal weights of `std`, zero bias."""
    conv = nn.Conv2d(in_channels, num_classes, 1, bias=True)
    truncated_normal_(conv.weight, std)
    nn.init.zeros_(conv.bias)
    return conv
