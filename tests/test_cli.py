"""The `stlib` command line, called in-process through main(argv) (and once as `python -m stlib`)."""

import importlib
import re
import socket
import subprocess
import sys

import pytest
import torch
from PIL import Image

import stlib
from stlib import weights as W
from stlib.cli import main

stylize_module = importlib.import_module("stlib.transfer")
objective_module = importlib.import_module("stlib.engine.objective")


@pytest.fixture(autouse=True)
def keep_thread_count():
    """main() may lower torch's thread count on a busy machine; give the other tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def pair_files(tmp_path, tiny_pair):
    content, style = tiny_pair
    return str(stlib.save_image(content, tmp_path / "content.png")), str(stlib.save_image(style, tmp_path / "style.png"))


def error_line(captured) -> str:
    """The whole of stderr, which must be exactly one line starting 'stlib: error:' and no traceback."""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("stlib: error: ") and "Traceback" not in captured.err
    return lines[0]


def test_transfer_writes_png_and_reports(pair_files, tmp_path, capsys):
    out = tmp_path / "result" / "out.png"
    rc = main(["transfer", *pair_files, "-o", str(out), "--size", "64", "--steps", "3"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert Image.open(out).size == (64, 48)
    assert "weights: random" in captured.out
    assert "offline approximation" in captured.out and "stlib weights download" in captured.out
    assert "device: cpu" in captured.out and "precision:" in captured.out
    assert f"saved {out}" in captured.out
    assert re.search(r"3 steps (\(.*\) )?at 64x48 px in", captured.out)
    assert "3/3" in captured.err  # the tqdm progress bar
    assert re.search(r"estimate: .* and ≈ .* on cpu", captured.out)  # stlib.estimate, before the run


def test_transfer_refuses_a_run_that_will_not_fit(pair_files, tmp_path, monkeypatch, capsys):
    estimate_module = importlib.import_module("stlib.engine.budget")
    monkeypatch.setattr(estimate_module, "available_bytes", lambda device="auto": int(1.5e9))
    out = tmp_path / "o.png"
    rc = main(["transfer", *pair_files, "-o", str(out), "--size", "4096", "--steps", "2"])
    line = error_line(capsys.readouterr())
    assert rc == 2 and not out.exists()
    assert "needs about" in line and "1.5 GB is free" in line and "--force" in line
    size = int(re.search(r"try --size (\d+)", line).group(1))
    assert 64 <= size < 4096
    assert stlib.estimate(size, steps=2, available=int(1.5e9)).fits  # the suggested size does fit
    rc = main(["transfer", *pair_files, "-o", str(out), "--size", "48", "--steps", "1", "--no-estimate"])
    assert rc == 0  # --no-estimate skips the check


def test_transfer_force_and_slow_warning(pair_files, tmp_path, monkeypatch, capsys):
    estimate_module = importlib.import_module("stlib.engine.budget")
    cli_module = importlib.import_module("stlib.cli")
    monkeypatch.setattr(estimate_module, "available_bytes", lambda device="auto": 1000)
    rc = main(["transfer", *pair_files, "-o", str(tmp_path / "o.png"), "--size", "48", "--steps", "1", "--force"])
    captured = capsys.readouterr()
    assert rc == 0 and "may run out of memory" in captured.out and "--force" in captured.out
    monkeypatch.undo()
    monkeypatch.setattr(cli_module, "SLOW_RUN_SECONDS", 0.0)
    rc = main(["transfer", *pair_files, "-o", str(tmp_path / "o.png"), "--size", "48", "--steps", "1"])
    assert rc == 0 and "this will take a while" in capsys.readouterr().out


def test_transfer_options_reach_stylize(pair_files, tmp_path, monkeypatch, capsys):
    seen = {}
    real = stylize_module.stylize

    def spy(content, style, **kwargs):
        seen.update(kwargs)
        return real(content, style, **kwargs)

    monkeypatch.setattr(stylize_module, "stylize", spy)
    out = tmp_path / "o.jpg"
    rc = main(["transfer", *pair_files, "-o", str(out), "--size", "40", "--steps", "2", "--style-weight", "10",
               "--tv-weight", "0", "--optimizer", "adam", "--init", "noise", "--seed", "3", "--precision", "fp32",
               "--preserve-color", "histogram", "--pooling", "avg"])
    assert rc == 0, capsys.readouterr().err
    assert seen["size"] == 40 and seen["steps"] == 2 and seen["style_weight"] == 10.0 and seen["tv_weight"] == 0
    assert seen["optimizer"] == "adam" and seen["init"] == "noise" and seen["seed"] == 3
    assert seen["precision"] == "fp32" and seen["preserve_color"] == "histogram"
    assert seen["model"].pooling == "avg"
    assert "content_weight" not in seen  # unset -> stylize's preset
    assert Image.open(out).size == (40, 30)


def test_demo_fast_writes_result_and_grid(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STLIB_FAST", "1")
    monkeypatch.chdir(tmp_path)
    rc = main(["demo"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    result, grid = tmp_path / "out" / "demo.png", tmp_path / "out" / "demo_grid.png"
    assert result.exists() and grid.exists()
    w, h = Image.open(result).size
    assert max(w, h) == 64  # the fast size
    gw, gh = Image.open(grid).size
    assert gh > h and gw > 3 * w  # three panels side by side, with captions below
    assert "STLIB_FAST=1" in captured.out and "weights: random" in captured.out


def test_missing_input_is_one_line_exit_2(tmp_path, capsys):
    rc = main(["transfer", str(tmp_path / "nope.jpg"), "swirls", "-o", str(tmp_path / "o.png"), "--steps", "1"])
    assert rc == 2
    assert "nope.jpg" in error_line(capsys.readouterr())
    assert not (tmp_path / "o.png").exists()


def test_bad_weights_file_is_one_line_exit_2(pair_files, tmp_path, capsys):
    rc = main(["transfer", *pair_files, "-o", str(tmp_path / "o.png"), "--weights", str(tmp_path / "w.pth")])
    assert rc == 2
    assert "does not exist" in error_line(capsys.readouterr())


def test_bad_values_are_one_line_exit_2(pair_files, tmp_path, capsys):
    rc = main(["transfer", *pair_files, "-o", str(tmp_path / "o.png"), "--style-weight", "-1", "--steps", "1"])
    assert rc == 2 and "style_weight" in error_line(capsys.readouterr())
    rc = main(["transfer", *pair_files, "-o", str(tmp_path / "no_suffix"), "--steps", "1"])
    assert rc == 2 and ".png" in error_line(capsys.readouterr())


def test_unknown_or_missing_device_is_one_line_exit_2(pair_files, tmp_path, capsys):
    rc = main(["transfer", *pair_files, "-o", str(tmp_path / "o.png"), "--device", "gpu"])
    assert rc == 2 and "unknown device 'gpu'" in error_line(capsys.readouterr())
    if not torch.cuda.is_available():
        rc = main(["transfer", *pair_files, "-o", str(tmp_path / "o.png"), "--device", "cuda"])
        assert rc == 2 and "no usable CUDA GPU" in error_line(capsys.readouterr())


def test_usage_errors_exit_2(capsys):
    assert main(["transfer", "a.png", "b.png", "-o", "c.png", "--precision", "fp64"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["transfer", "a.png", "b.png", "-o", "c.png", "--size", "0"]) == 2
    assert main([]) == 2


def test_ctrl_c_still_saves_the_best_image(pair_files, tmp_path, monkeypatch, capsys):
    real = objective_module.tv_loss
    calls = {"n": 0}

    def tv(image):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(image)

    monkeypatch.setattr(objective_module, "tv_loss", tv)
    out = tmp_path / "o.png"
    rc = main(["transfer", *pair_files, "-o", str(out), "--size", "64", "--steps", "10", "--precision", "fp32",
               "--no-estimate"])
    captured = capsys.readouterr()
    assert rc == 130
    assert Image.open(out).size == (64, 48)
    assert "interrupted" in captured.out and f"saved {out}" in captured.out


def test_weights_export_and_info(tmp_path, capsys):
    path = tmp_path / "w16.pth"
    assert main(["weights", "export", "-o", str(path), "--source", "random", "--dtype", "float16"]) == 0
    assert path.exists() and "40.1 MB" in capsys.readouterr().out
    assert main(["weights", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"sha256: {W.sha256_file(path)}" in out
    assert "format: stlib-vgg19-features" in out and "dtype:  float16" in out and "source: random" in out
    assert f"({path.stat().st_size} bytes)" in out


def test_weights_info_auto_never_downloads(tmp_path, monkeypatch, capsys):
    def no_download(*args, **kwargs):
        raise AssertionError("weights info must not download")

    monkeypatch.setattr(W, "download_imagenet", no_download)
    monkeypatch.setattr(W.torch.hub, "download_url_to_file", no_download)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("STLIB_WEIGHTS")
    monkeypatch.delenv("STLIB_OFFLINE")
    assert main(["weights", "info"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "hub" / "checkpoints") in out and "nothing cached" in out
    monkeypatch.setenv("STLIB_OFFLINE", "1")
    assert main(["weights", "info"]) == 0
    assert "seeded random weights" in capsys.readouterr().out
    monkeypatch.setenv("STLIB_WEIGHTS", "random")
    assert main(["weights", "info"]) == 0
    assert "STLIB_WEIGHTS=random" in capsys.readouterr().out


def test_weights_info_on_missing_file(tmp_path, capsys):
    assert main(["weights", "info", str(tmp_path / "none.pth")]) == 2
    assert "does not exist" in error_line(capsys.readouterr())


def test_weights_download_offline_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc = main(["weights", "download", "--url", f"http://127.0.0.1:{port}/vgg19-12345678.pth"])
    assert rc == 2 and "offline" in error_line(capsys.readouterr())


def test_python_dash_m_help():
    proc = subprocess.run([sys.executable, "-m", "stlib", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for command in ("transfer", "demo", "weights"):
        assert command in proc.stdout


def test_subcommand_help(capsys):
    assert main(["transfer", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--preserve-color" in out and "--precision" in out and "CONTENT" in out
    assert main(["weights", "export", "--help"]) == 0
    assert "--dtype" in capsys.readouterr().out


def test_transfer_with_region_masks(pair_files, tmp_path, monkeypatch, capsys):
    seen = {}
    real = stylize_module.stylize

    def spy(content, style, **kwargs):
        seen.update(kwargs, style=style)
        return real(content, style, **kwargs)

    monkeypatch.setattr(stylize_module, "stylize", spy)
    out = tmp_path / "regions.png"
    rc = main(["transfer", "rocket", "starry_night", "--region-style", "mosaic", "--masks", "rocket_sky",
               "-o", str(out), "--size", "48", "--steps", "1"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert seen["style_masks"] == "rocket_sky" and isinstance(seen["style"], list) and len(seen["style"]) == 2
    assert out.is_file()
    rc = main(["transfer", *pair_files, "-o", str(tmp_path / "o.png"), "--region-style", "mosaic", "--steps", "1"])
    assert rc == 2 and "--masks" in error_line(capsys.readouterr())
    rc = main(["transfer", *pair_files, "-o", str(tmp_path / "o.png"), "--masks", "rocket_sky", "--steps", "1"])
    assert rc == 2 and "one style per region" in error_line(capsys.readouterr())


def test_a_stalled_run_says_so_and_suggests_fp32(pair_files, tmp_path, monkeypatch, capsys):
    """An optimiser that can only propose uphill steps: the CLI saves the (unchanged) image, prints the stop
    reason "stalled" and a warning that points to --precision fp32 (issue 18: never "converged" at the start)."""
    from stlib.engine.optim import SafeguardedLBFGS

    class Uphill(SafeguardedLBFGS):
        def _evaluate(self, closure):
            loss, grad = super()._evaluate(closure)
            return loss, -grad

    monkeypatch.setattr(stylize_module, "make_optimizer", lambda name, x, lr, *rest: Uphill(x, floor=0.0))
    out = tmp_path / "o.png"
    rc = main(["transfer", *pair_files, "-o", str(out), "--size", "48", "--steps", "60", "--no-estimate"])
    captured = capsys.readouterr()
    assert rc == 0 and out.exists(), captured.err
    assert "stopped early: stalled at step" in captured.out and "converged" not in captured.out
    assert "warning: the optimiser stalled" in captured.out and "--precision fp32" in captured.out
