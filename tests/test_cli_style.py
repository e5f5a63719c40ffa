"""`stlib train-style` and `stlib apply` end to end, in-process through main(argv), in fast mode (STLIB_FAST=1)."""

import pytest
import torch
from PIL import Image

import stlib
from stlib.cli import main
from stlib.style_file import load_style


@pytest.fixture(autouse=True)
def keep_thread_count():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def error_line(captured) -> str:
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("stlib: error: ") and "Traceback" not in captured.err
    return lines[0]


@pytest.fixture(scope="module")
def style_file(tmp_path_factory):
    """A style trained by the command line (fast mode: 64 px crops, 4 steps)."""
    out = tmp_path_factory.mktemp("style") / "swirls.pt"
    assert main(["train-style", "swirls", "-o", str(out), "--channels", "4", "--blocks", "1"]) == 0
    return out


def test_train_style_writes_a_style_file_and_reports(tmp_path, capsys):
    out = tmp_path / "styles" / "mine.pt"
    rc = main(["train-style", "swirls", "-o", str(out), "--channels", "4", "--blocks", "1", "--steps", "4",
               "--photos", "astronaut", "coffee"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "weights: random" in captured.out and "device: cpu" in captured.out
    assert "training photos: astronaut, coffee" in captured.out
    assert "estimate: " in captured.out and "Ctrl-C stops and keeps the best weights" in captured.out
    assert "4/4" in captured.err  # the tqdm progress bar
    assert f"saved {out}" in captured.out and "stlib apply" in captured.out
    style = load_style(out)
    assert style.settings["style"] == "swirls" and style.settings["steps"] == 4
    assert style.settings["photos"] == ["astronaut", "coffee"] and style.net.config.channels == 4


def test_apply_paints_a_photo(style_file, tmp_path, capsys):
    out = tmp_path / "cat.png"
    rc = main(["apply", str(style_file), "chelsea", "-o", str(out), "--size", "96"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert Image.open(out).size == (96, 64)
    assert "style 'swirls'" in captured.out and "applied to 96x64 px in" in captured.out
    expected = load_style(style_file).apply(stlib.load_image("chelsea", 96))
    written = stlib.load_image(out)
    assert (written - expected).abs().max() <= 1 / 255 + 1e-6  # the PNG rounds to 8 bits
    half = tmp_path / "half.png"
    assert main(["apply", str(style_file), "chelsea", "-o", str(half), "--size", "96", "--strength", "0"]) == 0
    photo = stlib.load_image("chelsea", 96)
    assert (stlib.load_image(half) - photo).abs().max() <= 1 / 255 + 1e-6


def test_apply_refuses_bad_style_files(style_file, tmp_path, capsys):
    photo = stlib.save_image(torch.rand(1, 3, 40, 40), tmp_path / "photo.png")
    assert main(["apply", str(photo), "chelsea", "-o", str(tmp_path / "a.png")]) == 2
    assert "is not a trained style" in error_line(capsys.readouterr())
    assert main(["apply", str(tmp_path / "none.pt"), "chelsea", "-o", str(tmp_path / "a.png")]) == 2
    assert "no such file" in error_line(capsys.readouterr())
    data = torch.load(style_file, weights_only=True)
    data["state"]["out.conv.bias"] += 1
    torch.save(data, tmp_path / "edited.pt")
    assert main(["apply", str(tmp_path / "edited.pt"), "chelsea", "-o", str(tmp_path / "a.png")]) == 2
    assert "checksum does not match" in error_line(capsys.readouterr())
    assert main(["apply", str(style_file), "chelsea", "-o", str(tmp_path / "a.txt")]) == 2
    assert ".png or .jpg" in error_line(capsys.readouterr())
    assert main(["apply", str(style_file), str(photo), "-o", str(photo)]) == 2
    assert "would overwrite the photo" in error_line(capsys.readouterr())
    assert main(["apply", str(style_file), "chelsea", "-o", str(tmp_path / "a.png"), "--strength", "2"]) == 2
    assert "between 0 (the photo) and 1" in capsys.readouterr().err


def test_train_style_refuses_bad_inputs_before_training(tmp_path, capsys):
    assert main(["train-style", "swirls", "-o", str(tmp_path / "style.png")]) == 2
    assert "a trained style is not an image; name it e.g. style.pt" in error_line(capsys.readouterr())
    assert main(["train-style", str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "s.pt")]) == 2
    assert "nope.jpg" in error_line(capsys.readouterr())
    assert main(["train-style", "swirls", "-o", str(tmp_path / "s.pt"), "--photos", "no_such_photo"]) == 2
    assert "no_such_photo" in error_line(capsys.readouterr())
    assert not (tmp_path / "s.pt").exists()


def test_train_style_ctrl_c_saves_the_best_weights(tmp_path, monkeypatch, capsys):
    """Ctrl-C during training: the best weights so far are saved and the exit status is 130."""
    import stlib.style_training as training

    real = training.random_crops
    calls = []

    def interrupted_crops(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3 + 1:  # the probe batch, then 2 training steps, then Ctrl-C during the 3rd
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "random_crops", interrupted_crops)
    out = tmp_path / "s.pt"
    rc = main(["train-style", "swirls", "-o", str(out), "--channels", "4", "--blocks", "1", "--steps", "10"])
    captured = capsys.readouterr()
    assert rc == 130
    assert f"the best weights so far are saved in {out}" in captured.err
    assert load_style(out).settings["steps"] == 2
