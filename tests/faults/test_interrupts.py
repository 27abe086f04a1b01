"""Ctrl-C where a library stands between the signal and the CLI: one line, exit code 130, nothing left.

Each case sends a real SIGINT to a real `inception3` process at a chosen moment: during an ONNX export,
while torch.onnx imports torch._dynamo (its exporter then reports the half-imported module's failure
instead of the interrupt); during a multi-worker build, to the whole process group as a terminal's
Ctrl-C does, while torch imports NumPy (torch warned and went on), as each worker is forked (a worker
printed its traceback, or Python's "Exception ignored" from a fork hook; rarely the build aborted), and
once a worker is converting images.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from faultkit import ENV
from tinycheckpoints import checkpoint_state, tiny_model

from inception3.run.checkpoint import FORMAT

# Sends SIGINT to its own process when the module named by argv[1] starts to be imported, after writing
# argv[2] (so the test knows the moment came), then runs `inception3` with the remaining arguments.
_INTERRUPT_ON_IMPORT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path

    signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal's: a caller may ignore it

    class InterruptOnImport:
        def find_spec(self, name, path=None, target=None):
            if name == sys.argv[1]:
                sys.meta_path.remove(self)
                Path(sys.argv[2]).touch()
                os.kill(os.getpid(), signal.SIGINT)
            return None

    sys.meta_path.insert(0, InterruptOnImport())
    from inception3.cli import main
    sys.exit(main(sys.argv[3:]))
    """
)


def _interrupted_on_import(module: str, marker: Path, *args: object) -> subprocess.CompletedProcess:
    """`inception3 ARGS` in a fresh interpreter, sent SIGINT as `module` starts to be imported."""
    command = [sys.executable, "-c", _INTERRUPT_ON_IMPORT, module, str(marker), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=300)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A depth-0.25 checkpoint of 5 classes."""
    import torch

    path = tmp_path_factory.mktemp("ckpt") / "ckpt-00000001.pt"
    torch.save(checkpoint_state(tiny_model()) | {"format": FORMAT, "step": 1}, path)
    return path


def test_ctrl_c_during_onnx_export_is_one_line_and_exit_code_130(checkpoint, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    marker = tmp_path / "interrupted"
    args = ("export", "--checkpoint", checkpoint, "--format", "onnx", "--output", out / "model.onnx")
    done = _interrupted_on_import("torch._dynamo.variables.builder", marker, *args)
    assert marker.exists(), "the exporter no longer imports torch._dynamo here: move the interrupt"
    assert done.returncode == 130, done.stderr
    assert done.stderr == "inception3 export: interrupted\n"
    assert os.listdir(out) == []  # no model.onnx, no temporary file


# Runs `inception3 ARGS` (argv[2:]) in a session of its own and sends SIGINT to that whole process
# group at the moment argv[1] names, once; the file argv[... "--output-dir" ...]/../interrupted marks it.
_BUILD_INTERRUPTED_AT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path

    signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal's: a caller may ignore it

    moment, args = sys.argv[1], sys.argv[2:]
    marker = Path(args[args.index("--output-dir") + 1]).parent / "interrupted"

    def ctrl_c():
        try:
            marker.touch(exist_ok=False)  # once, whichever process comes first
        except FileExistsError:
            return
        os.killpg(os.getpgid(0), signal.SIGINT)

    class OnImport:
        def find_spec(self, name, path=None, target=None):
            if name == "numpy._typing._array_like":
                sys.meta_path.remove(self)
                ctrl_c()

    forks = []

    def on_fork():
        frames = sys._getframe()
        while frames is not None and not frames.f_code.co_filename.endswith("popen_fork.py"):
            frames = frames.f_back
        if frames is None:
            return  # not a worker: a library's subprocess
        forks.append(1)
        if moment == f"worker {len(forks)}":
            ctrl_c()

    if moment == "import":
        sys.meta_path.insert(0, OnImport())
    os.register_at_fork(after_in_parent=on_fork)
    if moment == "converting":
        import inception3.data.shard_writer as writer

        prepare = writer.prepare_image

        def prepare_image(path):
            ctrl_c()
            return prepare(path)

        writer.prepare_image = prepare_image
    from inception3.cli import main
    sys.exit(main(args))
    """
)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """4 classes of 12 small JPEGs."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for c in range(4):
        (root / f"class{c}").mkdir()
        for i in range(12):
            PIL.Image.fromarray(rng.integers(0, 256, (60, 70, 3), dtype=np.uint8)).save(
                root / f"class{c}/{i}.jpg"
            )
    return root


@pytest.mark.parametrize("moment", ["import", "worker 1", "worker 2", "converting"])
def test_ctrl_c_early_in_a_multi_worker_build_is_one_line_and_exit_code_130(images, tmp_path, moment):
    output = tmp_path / "shards"
    args = ["build", "--train-dir", images, "--output-dir", output, "--workers", "2", "--train-shards", "4"]
    args += ["--validation-fraction", "0.25", "--validation-shards", "2"]
    command = [sys.executable, "-c", _BUILD_INTERRUPTED_AT, moment, *map(str, args)]
    done = subprocess.run(
        command, capture_output=True, text=True, env=ENV, timeout=300, start_new_session=True
    )
    assert (tmp_path / "interrupted").exists(), f"the moment {moment!r} never came"
    assert done.returncode == 130, done.stderr
    assert done.stderr == "inception3 build: interrupted\n"
    assert not list(output.glob(".*.tmp-*")) if output.exists() else True  # nothing half-written
    assert not (output / "dataset.json").exists()
