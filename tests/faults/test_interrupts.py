"""Ctrl-C where a library stands between the signal and the CLI: one line, exit code 130, nothing left.

Each case sends a real SIGINT to a real `inception3` process at a chosen moment: during an ONNX export,
while torch.onnx imports torch._dynamo (its exporter then reports the half-imported module's failure
instead of the interrupt).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

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
