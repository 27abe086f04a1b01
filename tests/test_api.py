"""The Python API: the README's example runs as written, `import inception3` stays light, and each
function gives what its command gives."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from evalfixtures import write_image

import inception3
from inception3.evaluate import evaluate_checkpoint
from inception3.predict import predict_each

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: tiny convolutions only lose time to thread hand-offs, most on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _readme_python() -> str:
    """The fenced python blocks of the README's "From Python" section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## From Python\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL))


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory) -> tuple[Path, str]:
    """The README's example run as written in a folder with photos/ of two classes: (folder, stdout)."""
    root = tmp_path_factory.mktemp("readme")
    for c, name in enumerate(("daisy", "tulip")):
        for i in range(10):
            write_image(root / "photos" / name / f"{i}.jpg", seed=100 * c + i)
    code = _readme_python()
    assert "inception3.build_shards" in code and "inception3.predict" in code
    out, here = io.StringIO(), Path.cwd()
    os.chdir(root)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    finally:
        os.chdir(here)
    return root, out.getvalue()


def test_the_readme_example_builds_trains_evaluates_and_predicts(readme_run) -> None:
    root, out = readme_run
    assert "wrote 16 train records in 1 shards, 4 validation records in 1 shards" in out
    assert re.search(r"^step 6: \S*run/checkpoints/\S+$", out, flags=re.MULTILINE)
    assert re.search(r"precision @ 1 = [01]\.\d{3}, recall @ 5 = 1\.000 \[4 examples\]", out)
    assert re.search(r"photos/daisy/0\.jpg \('(daisy|tulip)', '(daisy|tulip)'\)", out)
    assert "('daisy', 'tulip') 75" in out
    assert (root / "run" / "checkpoints" / "latest").exists()


def test_import_inception3_does_not_import_torch() -> None:
    code = (
        "import sys, inception3, inception3.cli\n"
        "inception3.TrainConfig.from_preset('tiny'); inception3.EvalConfig(); inception3.Inception3Error\n"
        "print(sorted(m for m in ('torch', 'numpy', 'PIL') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_train_evaluate_and_predict_are_callable_and_still_the_modules() -> None:
    import inception3.evaluate as evaluate_module
    import inception3.train.loop as loop

    assert inception3.evaluate is evaluate_module and callable(inception3.evaluate)
    assert inception3.train.loop is loop and inception3.train.train is loop.train
    assert "top_k" in str(__import__("inspect").signature(inception3.predict))


def test_from_preset_puts_nested_keys_in_their_records_and_applies_the_batch_rule() -> None:
    cfg = inception3.TrainConfig.from_preset("tiny", crop_area_range=[0.2, 1.0], init_from=Path("w.pt"))
    assert (cfg.model.image_size, cfg.model.depth_multiplier, cfg.batch_size) == (75, 0.25, 16)
    assert (cfg.augment.crop_area_range, cfg.init_from) == ((0.2, 1.0), "w.pt")
    distributed = inception3.TrainConfig.from_preset("imagenet-distributed", batch_size=64)
    assert (distributed.batch_size, distributed.batch_size_per_rank) == (64, None)
    assert inception3.TrainConfig.from_preset() == inception3.TrainConfig()


def test_from_preset_refuses_an_unknown_key_preset_or_value_in_one_line() -> None:
    with pytest.raises(inception3.Inception3Error, match="unknown config key 'lerning_rate'; did you mean"):
        inception3.TrainConfig.from_preset("flowers", lerning_rate=0.1)
    with pytest.raises(inception3.Inception3Error, match="unknown preset 'cifar'"):
        inception3.TrainConfig.from_preset("cifar")
    with pytest.raises(inception3.Inception3Error, match="config: image_size must be"):
        inception3.TrainConfig.from_preset("tiny", image_size=10)


@pytest.fixture(scope="module")
def data(readme_run) -> tuple[Path, Path]:
    """The README run's shards and its newest checkpoint."""
    root, _ = readme_run
    return root / "shards", max((root / "run" / "checkpoints").glob("*.pt"))


def test_evaluate_gives_what_evaluate_checkpoint_gives(data) -> None:
    shards, checkpoint = data
    config = inception3.EvalConfig(device="cpu", num_workers=0, progress=False)
    result = inception3.evaluate(str(checkpoint), str(shards), config, use_ema=False)
    expected = evaluate_checkpoint(checkpoint, shards, config.__class__(**{**vars(config), "use_ema": False}))
    assert (result.top1, result.top5, result.loss, result.examples) == (
        expected.top1,
        expected.top5,
        expected.loss,
        expected.examples,
    )
    assert result.ema is False and result.examples == 4


def test_predict_takes_paths_pillow_images_and_tensors_alike(data, tmp_path: Path) -> None:
    _, checkpoint = data
    pixels = np.random.default_rng(3).integers(0, 256, size=(80, 90, 3), dtype=np.uint8)
    path = tmp_path / "a.png"  # lossless: the file's pixels are the tensor's
    PIL.Image.fromarray(pixels).save(path)
    tensor = torch.from_numpy(pixels.copy()).permute(2, 0, 1)
    loaded = inception3.load_model(checkpoint)
    by_path, by_pillow, by_tensor = inception3.predict(
        loaded, [path, PIL.Image.fromarray(pixels), tensor], top_k=2, device="cpu"
    )
    assert by_path.image == str(path) and (by_pillow.image, by_tensor.image) == ("image 1", "image 2")
    assert set(by_path.classes) == {"daisy", "tulip"}
    assert by_pillow.probabilities == by_path.probabilities == by_tensor.probabilities
    (alone,) = inception3.predict(checkpoint, tensor[None], top_k=2, device="cpu")  # a batch of one
    assert (alone.image, alone.classes) == ("image 0", by_tensor.classes)
    assert alone.probabilities == pytest.approx(by_tensor.probabilities, abs=1e-5)


def test_predict_names_an_unreadable_image_or_hands_it_over(data, tmp_path: Path) -> None:
    _, checkpoint = data
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(inception3.Inception3Error, match=r"broken\.jpg: not a readable image"):
        inception3.predict(checkpoint, broken)
    with pytest.raises(
        inception3.Inception3Error, match=r"image 0: is a float32 tensor of shape \[3, 8, 8\]"
    ):
        inception3.predict(checkpoint, torch.zeros(3, 8, 8))
    predictions, unreadable = predict_each(checkpoint, [broken])
    assert predictions == [] and len(unreadable) == 1
    assert unreadable[0].startswith(f"{broken}: not a readable image")


def test_predict_refuses_an_image_file_over_the_pixel_limit(data, tmp_path: Path, monkeypatch) -> None:
    _, checkpoint = data
    path = write_image(tmp_path / "big.jpg", seed=4, height=80, width=90)
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 80 * 90 - 1)
    with pytest.raises(inception3.Inception3Error, match=r"big\.jpg: .*too large to decode safely"):
        inception3.predict(checkpoint, [path])
