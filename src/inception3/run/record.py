"""What a training checkpoint holds: the `Checkpoint` record, the one writer and reader of its content.

Training fills it from the live objects (`train/resume.py`), resume reads it back, and weights and
eval read the network from it (`weights/inception3.py`). The file around it (atomic writes, `latest`,
pruning) is `run/checkpoint.py`'s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from inception3.config import DEFAULT_EVAL_PREPROCESSING, ModelConfig
from inception3.errors import Inception3Error
from inception3.run.checkpoint import FORMAT, envelope, save_checkpoint


@dataclass(frozen=True)
class Checkpoint:
    """What a training checkpoint holds, field by field as docs/formats.md lists them.

    `to_state` is the dict `torch.save` writes (tensors and plain values only) and `from_state`
    reads one back. The training parts (ema, optimizer, data, rng) are None in a file that lacks
    them: such a file still gives its weights, but cannot be resumed.
    """

    step: int  # the global step: steps taken when it was written
    model_config: ModelConfig  # the network's shape
    model: dict[str, torch.Tensor]  # the network's state dict, TF-Slim names
    ema: dict[str, torch.Tensor] | None  # the moving averages of every entry of `model`
    optimizer: dict | None  # the optimizer's state dict
    data: dict | None  # the reader's exact position (TrainLoader.state_dict)
    rng: dict | None  # torch, numpy, Python (and CUDA) random states
    config: dict[str, object]  # every training config key, as config.toml writes them
    class_names: tuple[str, ...] | None  # the dataset's, in label order
    eval_preprocessing: str = DEFAULT_EVAL_PREPROCESSING  # how eval and predict prepare images for it
    final: bool = False  # training ended with it (max_steps reached)
    scaler: dict | None = None  # fp16's loss scaling (train/precision.py); absent in other runs

    @property
    def image_size(self) -> int:
        """The input size in pixels the network was trained at (written for predict and export)."""
        return self.model_config.image_size

    def to_state(self) -> dict:
        """The dict written to disk, its keys in the order checkpoints have always had."""
        fp16 = {"scaler": self.scaler} if self.scaler is not None else {}  # other runs: no key at all
        return {
            "model_config": asdict(self.model_config),
            "model": self.model,
            "ema": self.ema,
            "optimizer": self.optimizer,
            "data": self.data,
            "rng": self.rng,
            "config": self.config,
            "class_names": list(self.class_names) if self.class_names is not None else None,
            "image_size": self.image_size,
            "eval_preprocessing": self.eval_preprocessing,
            **fp16,
        } | envelope(self.step, self.final)

    @classmethod
    def from_state(cls, state: dict) -> Checkpoint:
        """The record of a dict `torch.load` read from a checkpoint file (see `load_checkpoint`).

        A key added to ModelConfig since the file was written takes its default; keys a newer
        version added to the file are ignored. Raises Inception3Error for a dict that is no
        inception3 checkpoint (no weights, no network shape).
        """
        if state.get("format") != FORMAT:
            raise Inception3Error(
                f"not an inception3 checkpoint (format {state.get('format')!r}, not {FORMAT!r})"
            )
        for key in ("model", "model_config"):
            if not isinstance(state.get(key), dict):
                raise Inception3Error(
                    f"an inception3 checkpoint without its {key!r} (edited after training wrote it?); "
                    "there are no weights to read"
                )
        known = {f.name for f in fields(ModelConfig)}
        unknown = sorted(set(state["model_config"]) - known)
        if unknown:
            raise Inception3Error(
                f"the checkpoint holds a network with settings this version does not know "
                f"({', '.join(map(str, unknown))}); read it with the inception3 that wrote it"
            )
        names = state.get("class_names")
        return cls(
            step=int(state.get("step", 0)),
            model_config=ModelConfig(**state["model_config"]),
            model=state["model"],
            ema=state.get("ema") or None,
            optimizer=state.get("optimizer"),
            data=state.get("data"),
            rng=state.get("rng"),
            config=dict(state.get("config") or {}),
            class_names=tuple(names) if names is not None else None,
            eval_preprocessing=state.get("eval_preprocessing") or DEFAULT_EVAL_PREPROCESSING,
            final=bool(state.get("final", False)),
            scaler=state.get("scaler"),
        )

    def weights(self, use_ema: bool = True) -> tuple[dict[str, torch.Tensor], bool]:
        """The state dict to load into the network, and whether it is the moving averages: those
        when `use_ema` and the checkpoint has them, else the raw weights."""
        if use_ema and self.ema:
            return self.ema, True
        return self.model, False

    def save(self, run_dir: Path, *, keep: int = 5, mark: bool = False) -> Path:
        """Write this record as the run's checkpoint of its step (`save_checkpoint`)."""
        return save_checkpoint(run_dir, self.step, self.to_state(), keep=keep, final=self.final, mark=mark)
