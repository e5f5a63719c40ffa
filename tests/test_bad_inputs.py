"""A corpus of bad and awkward inputs, each with the exact outcome a user should see.

Every input is built here from code (no binaries in the repository). Test names carry the class of failure
they belong to (the classes of issue 11), so ``pytest tests/test_bad_inputs.py -rA`` can be tallied by class:

    c0  already handled (kept handled)      c4  downloads: total deadline and size cap
    c1  weights that are not weights        c5  Ctrl-C at any moment
    c2  silent wrong images                 c6  never lose a file (inputs, unwritable outputs)
    c3  bad arguments                       c7  messages that say what to do

CLI cases run the real ``stlib`` command in a subprocess; the Ctrl-C cases send a real SIGINT to it.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import stlib
from stlib.images import ImageLoadError
from stlib.weights import EXPORT_FORMAT, WeightsError, read_weights_file

# ----------------------------------------------------------------------------------------------- helpers
_STLIB = Path(sys.executable).with_name("stlib")
STLIB_CMD = [str(_STLIB)] if _STLIB.exists() else [sys.executable, "-m", "stlib"]
NO_ROOT = pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")


def cli_env(**extra: str) -> dict:
    env = {**os.environ, "STLIB_WEIGHTS": "random", "STLIB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE",
           "PYTHONUNBUFFERED": "1"}
    env.update(extra)
    return env


def cli(*args, cwd=None, timeout: float = 240, **env) -> subprocess.CompletedProcess:
    """Run the real ``stlib`` command; return the finished process (text stdout/stderr)."""
    return subprocess.run([*STLIB_CMD, *map(str, args)], cwd=cwd, env=cli_env(**env), capture_output=True,
                          text=True, timeout=timeout)


def cli_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    """Assert exit 2 with one ``stlib: error: ...`` line holding ``words`` (case-insensitive), no traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("stlib: error: ")]
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    return lines[0]


def raises_with(exc_type, *words):
    """Context: the block raises ``exc_type`` whose message holds every one of ``words`` (case-insensitive)."""

    class _Check:
        def __enter__(self):
            self.ctx = pytest.raises(exc_type)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self.ctx.__exit__(*exc)  # raises when nothing was raised; False for another type
            if not handled:
                return False
            message = str(self.info.value).lower()
            for word in words:
                assert word.lower() in message, (word, str(self.info.value))
            return handled

    return _Check()


def png(path: Path, image: Image.Image) -> Path:
    image.save(path)
    return path


def gradient(width: int = 64, height: int = 48) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, (x + y) / 2], -1).astype(np.uint8))


@pytest.fixture
def pair(tmp_path):
    """(content.png 64x48, style.png 40x40) in tmp_path."""
    rng = np.random.default_rng(0)
    style = Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    return png(tmp_path / "content.png", gradient()), png(tmp_path / "style.png", style)


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ----------------------------------------------------------------------------------------------- weights
@pytest.fixture(scope="module")
def good_state():
    """Valid VGG-19 features (seeded random), fp16 to keep the files small."""
    from stlib.weights import random_weights

    return {k: v.half() for k, v in random_weights().items()}


def _variant(state, key, fn):
    out = dict(state)
    out[key] = fn(state[key].clone())
    return out


def _set(t, index, value):
    t.view(-1)[index] = value
    return t


def _export_payload(state):
    from stlib.weights import _tensor_digest

    return {"format": EXPORT_FORMAT, "version": 1, "origin": "random", "state_dict": state,
            "tensor_sha256": _tensor_digest(state)}


BAD_WEIGHTS = {  # id: (build(state) -> object to torch.save, words the WeightsError must contain)
    "one_nan": (lambda s: _variant(s, "conv3_1.weight", lambda t: _set(t, 5, float("nan"))),
                ["conv3_1.weight", "NaN"]),
    "all_nan": (lambda s: {k: torch.full_like(v, float("nan")) for k, v in s.items()}, ["conv1_1.weight", "NaN"]),
    "inf": (lambda s: _variant(s, "conv5_4.bias", lambda t: _set(t, 3, float("inf"))), ["conv5_4.bias", "infinite"]),
    "neg_inf": (lambda s: _variant(s, "conv2_2.weight", lambda t: _set(t, 0, float("-inf"))),
                ["conv2_2.weight", "infinite"]),
    "int8": (lambda s: {k: v.to(torch.int8) for k, v in s.items()}, ["int8", "floating"]),
    "one_int64_bias": (lambda s: _variant(s, "conv2_1.bias", lambda t: t.long()), ["conv2_1.bias", "int64"]),
    "bool": (lambda s: {k: v > 0 for k, v in s.items()}, ["bool", "floating"]),
    "entry_list": (lambda s: {**s, "conv1_1.weight": [1.0, 2.0, 3.0]}, ["conv1_1.weight", "list", "tensor"]),
    "bias_list": (lambda s: {**s, "conv1_1.bias": [0.0] * 64}, ["conv1_1.bias", "list"]),
    "entry_none": (lambda s: {**s, "conv4_1.weight": None}, ["conv4_1.weight", "None"]),
    "entry_str": (lambda s: {**s, "conv4_2.bias": "zeros"}, ["conv4_2.bias", "str"]),
    "missing_key": (lambda s: {k: v for k, v in s.items() if k != "conv5_4.weight"}, ["conv5_4.weight", "lacks"]),
    "wrong_shape": (lambda s: {**s, "conv1_1.weight": torch.zeros(64, 1, 3, 3, dtype=torch.half)},
                    ["conv1_1.weight", "shape"]),
    "empty_dict": (lambda s: {}, ["not a VGG-19"]),
    "other_model": (lambda s: {"fc.weight": torch.zeros(10, 10), "fc.bias": torch.zeros(10)}, ["not a VGG-19"]),
    "export_without_state": (lambda s: {"format": EXPORT_FORMAT, "version": 1}, ["state_dict", "export"]),
    "export_state_list": (lambda s: {"format": EXPORT_FORMAT, "state_dict": list(s.values())},
                          ["state_dict", "export"]),
    "export_with_nan": (lambda s: _export_payload(_variant(s, "conv4_4.weight", lambda t: _set(t, 9, float("nan")))),
                        ["conv4_4.weight", "NaN"]),
    "export_int8": (lambda s: _export_payload({k: v.to(torch.int8) for k, v in s.items()}), ["int8"]),
    "top_level_tensor": (lambda s: torch.zeros(3), ["Tensor", "not a VGG-19"]),
    "top_level_list": (lambda s: [1, 2, 3], ["list", "not a VGG-19"]),
}


@pytest.fixture(scope="module")
def bad_weight_files(tmp_path_factory, good_state):
    folder = tmp_path_factory.mktemp("bad_weights")
    files = {}
    for name, (build, _) in BAD_WEIGHTS.items():
        files[name] = folder / f"{name}.pth"
        torch.save(build(good_state), files[name])
    return files


@pytest.mark.parametrize("name", list(BAD_WEIGHTS))
def test_c1_bad_weights_file_is_refused_by_name(name, bad_weight_files):
    with raises_with(WeightsError, *BAD_WEIGHTS[name][1]):
        stlib.load_vgg19(bad_weight_files[name])


@pytest.mark.parametrize("name,words", [("one_nan", ["conv3_1.weight", "NaN"]), ("int8", ["int8"]),
                                        ("export_without_state", ["state_dict", "export"]),
                                        ("bias_list", ["conv1_1.bias", "list"])])
def test_c1_weights_info_refuses_bad_file(name, words, bad_weight_files):
    proc = cli("weights", "info", bad_weight_files[name])
    line = cli_error(proc, *words)
    assert "imagenet (torchvision" not in proc.stdout.lower()
    assert line != "stlib: error: state_dict"


def test_c1_transfer_with_nan_weights_stops_before_the_run(bad_weight_files, pair, tmp_path):
    out = tmp_path / "out.png"
    proc = cli("transfer", *pair, "-o", out, "--size", 64, "--steps", 2, "--weights", bad_weight_files["all_nan"])
    cli_error(proc, "NaN")
    assert not out.exists()


def test_c1_env_weights_with_inf_stops_before_the_run(bad_weight_files, pair, tmp_path):
    out = tmp_path / "out.png"
    proc = cli("transfer", *pair, "-o", out, "--size", 64, "--steps", 2, "--no-estimate",
               STLIB_WEIGHTS=str(bad_weight_files["inf"]))
    cli_error(proc, "conv5_4.bias", "infinite")
    assert not out.exists()


@pytest.fixture(scope="module")
def bare_random_file(tmp_path_factory, good_state):
    """A structurally valid torchvision-style features file that is NOT ImageNet (seeded random values)."""
    from stlib.layers import VGG19_LAYERS

    path = tmp_path_factory.mktemp("bare") / "vgg19-features.pth"
    torch.save({f"features.{VGG19_LAYERS.index(k.split('.')[0])}.{k.split('.')[1]}": v
                for k, v in good_state.items()}, path)
    return path


def test_c1_weights_info_never_calls_an_unverified_file_imagenet(bare_random_file):
    proc = cli("weights", "info", bare_random_file)
    assert proc.returncode == 0, proc.stderr
    source = [ln for ln in proc.stdout.splitlines() if ln.startswith("source:")]
    assert source and "imagenet" not in source[0].lower().replace("not verified as imagenet", ""), proc.stdout
    assert "not verified" in source[0].lower()
    checked = [ln for ln in proc.stdout.splitlines() if ln.startswith("checked:")]
    assert checked and "finite" in checked[0] and "32 tensors" in checked[0], proc.stdout


def test_c1_weights_info_reports_checks_for_an_export(tmp_path):
    path = tmp_path / "w.pth"
    stlib.weights.export_weights(path, source="random")
    proc = cli("weights", "info", path)
    assert proc.returncode == 0, proc.stderr
    assert "source: random" in proc.stdout
    assert re.search(r"checked: .*32 tensors.*finite.*shape", proc.stdout), proc.stdout


def test_c1_read_weights_info_lists_checks(bare_random_file):
    _, info = read_weights_file(bare_random_file)
    assert info["origin"] != "imagenet" and info["checked"]


@pytest.fixture
def export_file(tmp_path):
    path = tmp_path / "w.pth"
    stlib.weights.export_weights(path, source="random")
    return path


@pytest.mark.parametrize("text", ["", "   \n", "hello world", "zz" * 32 + "  w.pth", "1234"])
def test_c1_empty_or_garbled_sha256_side_file(export_file, text):
    export_file.with_name(export_file.name + ".sha256").write_text(text)
    with raises_with(WeightsError, ".sha256", "delete"):
        read_weights_file(export_file)


def test_c1_weights_info_with_empty_sha256(export_file):
    export_file.with_name(export_file.name + ".sha256").write_text("")
    cli_error(cli("weights", "info", export_file), ".sha256")


def test_c0_uppercase_sha256_side_file_is_accepted(export_file):
    side = export_file.with_name(export_file.name + ".sha256")
    side.write_text(side.read_text().upper())
    state, info = read_weights_file(export_file)
    assert info["origin"] == "random" and len(state) == 32


def test_c0_sha256_mismatch(export_file):
    export_file.with_name(export_file.name + ".sha256").write_text("0" * 64 + "  w.pth\n")
    with raises_with(WeightsError, "checksum mismatch", "download it again"):
        read_weights_file(export_file)


def test_c0_export_tensors_changed_after_export(tmp_path, good_state):
    payload = _export_payload(good_state)
    payload["state_dict"] = _variant(good_state, "conv1_1.bias", lambda t: t + 1)
    torch.save(payload, tmp_path / "w.pth")
    with raises_with(WeightsError, "corrupt", "export it again"):
        read_weights_file(tmp_path / "w.pth")


class _Evil:
    def __reduce__(self):
        return (open, ("/tmp/stlib-pwned-by-pickle", "w"))


def test_c0_malicious_pickle_is_not_run(tmp_path):
    Path("/tmp/stlib-pwned-by-pickle").unlink(missing_ok=True)
    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"conv1_1.weight": _Evil()}))
    with raises_with(WeightsError, "could not read"):
        read_weights_file(tmp_path / "evil.pth")
    assert not Path("/tmp/stlib-pwned-by-pickle").exists()


@pytest.mark.parametrize("kind,words", [("missing", ["does not exist"]), ("folder", ["is a folder"]),
                                        ("empty", ["could not read"]), ("garbage", ["could not read"]),
                                        ("truncated", ["could not read"])])
def test_c0_unreadable_weights_file(kind, words, tmp_path, export_file):
    path = tmp_path / f"{kind}.pth"
    if kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(os.urandom(4096))
    elif kind == "truncated":
        path.write_bytes(export_file.read_bytes()[:100_000])
    with raises_with(WeightsError, *words):
        read_weights_file(path)


def test_c0_cli_missing_weights_file(pair, tmp_path):
    cli_error(cli("transfer", *pair, "-o", tmp_path / "o.png", "--weights", tmp_path / "nope.pth"),
              "does not exist")


# ----------------------------------------------------------------------------------------------- images
def _tiff_i32(path: Path, arr: np.ndarray) -> Path:
    Image.fromarray(arr.astype(np.int32), mode="I").save(path)
    return path


@pytest.mark.parametrize("top", [255, 65535, 1_000_000])
def test_c2_int32_tiff_is_scaled_by_its_real_range(tmp_path, top):
    arr = np.linspace(0, top, 40 * 40).reshape(40, 40).round()
    img = stlib.load_image(_tiff_i32(tmp_path / "i32.tif", arr))
    expected = torch.from_numpy(arr / top).float()
    assert torch.allclose(img[0, 0], expected, atol=1e-5)
    assert float(img.max()) == pytest.approx(1.0)


def test_c2_int32_tiff_with_negative_values_is_refused(tmp_path):
    arr = np.linspace(-100, 100, 40 * 40).reshape(40, 40)
    with raises_with(ImageLoadError, "negative"):
        stlib.load_image(_tiff_i32(tmp_path / "neg.tif", arr))


def test_c2_save_uint8_tensor_keeps_its_pixels(tmp_path):
    t = torch.arange(0, 256, 4, dtype=torch.uint8).view(1, 1, 8, 8).expand(1, 3, 8, 8)
    stlib.save_image(t, tmp_path / "u8.png")
    back = np.array(Image.open(tmp_path / "u8.png"))
    assert np.array_equal(back[..., 0], t[0, 0].numpy())


def test_c2_save_float_0_255_is_refused(tmp_path):
    t = torch.full((1, 3, 8, 8), 128.0)
    with raises_with(ValueError, "255", "divide"):
        stlib.save_image(t, tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists()


def test_c2_save_int64_tensor_is_refused(tmp_path):
    with raises_with(ValueError, "int64", "uint8"):
        stlib.save_image(torch.full((3, 8, 8), 200, dtype=torch.int64), tmp_path / "i.png")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_c2_save_non_finite_pixels_is_refused(tmp_path, bad):
    t = torch.rand(1, 3, 8, 8)
    t[0, 1, 2, 3] = bad
    with raises_with(ValueError, "NaN"):
        stlib.save_image(t, tmp_path / "n.png")
    assert not (tmp_path / "n.png").exists()


def test_c2_to_pil_of_nan_is_refused():
    with raises_with(ValueError, "NaN"):
        stlib.images.to_pil(torch.full((3, 8, 8), float("nan")))


def test_c2_save_negative_float_image_is_refused(tmp_path):
    with raises_with(ValueError, "[0, 1]"):
        stlib.save_image(torch.linspace(-1, 1, 3 * 64).view(3, 8, 8), tmp_path / "neg.png")


def test_c0_save_small_overshoot_is_clamped(tmp_path):
    t = torch.full((3, 8, 8), 1.04)
    t[0] = -0.03
    stlib.save_image(t, tmp_path / "o.png")
    back = np.array(Image.open(tmp_path / "o.png"))
    assert back[0, 0].tolist() == [0, 255, 255]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_c2_stylize_refuses_non_finite_init(vgg, bad):
    content = torch.rand(1, 3, 48, 64)
    init = torch.rand(1, 3, 48, 64)
    init[0, 0, 0, 0] = bad
    with raises_with(ValueError, "init", "NaN"):
        stlib.stylize(content, content, model=vgg, init=init, size=64, steps=1, progress=False)


def test_c2_stylize_refuses_init_0_255(vgg):
    content = torch.rand(1, 3, 48, 64)
    with raises_with(ValueError, "init", "divide by 255"):
        stlib.stylize(content, content, model=vgg, init=content * 255, size=64, steps=1, progress=False)


def test_c2_stylize_uint8_init_is_read_as_0_255(vgg):
    content = torch.rand(1, 3, 48, 64)
    init = torch.full((1, 3, 48, 64), 51, dtype=torch.uint8)
    result = stlib.stylize(content, content, model=vgg, init=init, size=64, steps=0, progress=False)
    assert torch.allclose(result.image, torch.full_like(result.image, 0.2), atol=1e-3)


@pytest.mark.parametrize("blend", [[float("nan")], [float("inf")], [1.0, float("nan")], [-1.0], [0.0]])
def test_c2_style_blend_must_be_finite_weights(vgg, blend):
    content = torch.rand(1, 3, 48, 64)
    styles = [torch.rand(1, 3, 40, 40) for _ in blend]
    with raises_with(ValueError, "style_blend"):
        stlib.stylize(content, styles, model=vgg, style_blend=blend, size=64, steps=1, progress=False)


def test_c2_result_image_is_never_nan(vgg):
    content = torch.rand(1, 3, 48, 64)
    with pytest.warns(RuntimeWarning, match="infinite or NaN"):
        result = stlib.stylize(content, content, model=vgg, style_weight=1e38, size=64, steps=3, progress=False)
    assert torch.isfinite(result.image).all()
    assert result.stop_reason == "non_finite"


def test_c2_cli_infinite_loss_at_first_step_is_an_error(pair, tmp_path):
    out = tmp_path / "o.png"
    proc = cli("transfer", *pair, "-o", out, "--size", 64, "--steps", 3, "--no-estimate", "--style-weight", "1e38")
    line = cli_error(proc, "infinite", "--style-weight")
    assert not out.exists() or f"saved to {out}" in line  # nothing, or the last finite image (and it says so)


def test_c0_load_float_0_255_tensor_is_refused():
    with raises_with(ImageLoadError, "divide by 255"):
        stlib.load_image(torch.full((3, 40, 40), 200.0))


def test_c0_load_nan_tensor_is_refused():
    t = torch.rand(3, 40, 40)
    t[0, 0, 0] = float("nan")
    with raises_with(ImageLoadError, "NaN"):
        stlib.load_image(t)


def test_c0_16bit_png_pixels(tmp_path):
    arr = np.full((40, 40), 32768, dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    img = stlib.load_image(tmp_path / "g16.png")
    assert float(img[0, 0, 0, 0]) == pytest.approx(32768 / 65535, abs=1e-5)


def test_c0_float32_tiff_0_255_is_refused(tmp_path):
    Image.fromarray(np.full((40, 40), 200.0, dtype=np.float32), mode="F").save(tmp_path / "f.tif")
    with raises_with(ImageLoadError, "divide by 255"):
        stlib.load_image(tmp_path / "f.tif")


def test_c0_rgba_goes_onto_white(tmp_path):
    Image.new("RGBA", (40, 40), (0, 0, 0, 0)).save(tmp_path / "t.png")
    assert float(stlib.load_image(tmp_path / "t.png").min()) == 1.0


def test_c0_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (40, 40), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    img = stlib.load_image(tmp_path / "c.jpg")
    assert img[0, 0].mean() > 0.8 and img[0, 1].mean() < 0.2


def test_c0_exif_rotation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    gradient(64, 40).save(tmp_path / "r.jpg", exif=exif)
    assert tuple(stlib.load_image(tmp_path / "r.jpg").shape[-2:]) == (64, 40)


def test_c0_palette_with_transparency(tmp_path):
    img = Image.new("P", (40, 40), 0)
    img.putpalette([255, 0, 0] * 256)
    img.info["transparency"] = 0
    img.save(tmp_path / "p.png", transparency=0)
    assert float(stlib.load_image(tmp_path / "p.png").min()) == 1.0


def test_c0_one_bit_image(tmp_path):
    Image.new("1", (40, 40), 1).save(tmp_path / "b.png")
    assert float(stlib.load_image(tmp_path / "b.png").min()) == 1.0


def test_c0_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    img = stlib.load_image(tmp_path / "a.gif")
    assert img[0, 0].mean() > 0.9 and img[0, 2].mean() < 0.1


# ----------------------------------------------------------------------------------------------- arguments
@pytest.mark.parametrize("kwargs,words", [
    ({"scales": 0}, ["scales"]), ({"scales": -2}, ["scales"]), ({"scales": []}, ["scales"]),
    ({"scales": 1.5}, ["scales"]),
    ({"size": 0}, ["size"]), ({"size": -64}, ["size"]), ({"size": 10}, ["size", "32"]), ({"size": "big"}, ["size"]),
    ({"steps": "many"}, ["steps"]), ({"steps": 2.5}, ["steps"]),
    ({"lr": float("nan")}, ["lr"]), ({"lr": -1.0}, ["lr"]),
    ({"device": "meta"}, ["device", "meta"]), ({"device": "tpu"}, ["device", "tpu"]),
    ({"seed": "x"}, ["seed"]),
])
def test_c3_stylize_bad_argument_names_it(vgg, kwargs, words):
    content = torch.rand(1, 3, 48, 64)
    args = {"size": 64, "steps": 1, **kwargs}
    with raises_with(ValueError, *words):
        stlib.stylize(content, content, model=vgg, progress=False, **args)


def test_c3_stylize_with_no_style(vgg):
    with raises_with(ValueError, "style", "at least one"):
        stlib.stylize(torch.rand(1, 3, 48, 64), [], model=vgg, size=64, steps=1, progress=False)


@pytest.mark.parametrize("which", ["content", "style"])
def test_c3_zero_size_tensor(vgg, which):
    empty, ok = torch.zeros(1, 3, 0, 0), torch.rand(1, 3, 48, 64)
    content, style = (empty, ok) if which == "content" else (ok, empty)
    with raises_with(ImageLoadError, "no pixels"):
        stlib.stylize(content, style, model=vgg, size=64, steps=1, progress=False)


@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 40), (40, 0, 3)])
def test_c3_zero_size_array(shape):
    with raises_with(ImageLoadError, "no pixels"):
        stlib.load_image(np.zeros(shape, dtype=np.uint8))


def test_c3_zero_size_save(tmp_path):
    with raises_with(ValueError, "no pixels"):
        stlib.save_image(torch.zeros(1, 3, 0, 8), tmp_path / "z.png")


def test_c3_init_batch_is_refused(vgg):
    content = torch.rand(1, 3, 48, 64)
    with raises_with(ValueError, "init"):
        stlib.stylize(content, content, model=vgg, init=torch.rand(2, 3, 48, 64), size=64, steps=1, progress=False)


def test_c3_save_under_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    with raises_with(OSError, "afile", "not a folder"):
        stlib.save_image(torch.rand(3, 8, 8), tmp_path / "afile" / "out.png")


def test_c3_cli_device_meta(pair, tmp_path):
    cli_error(cli("transfer", *pair, "-o", tmp_path / "o.png", "--device", "meta"), "--device", "meta")


def test_c3_cli_out_of_memory(pair, tmp_path):
    proc = cli("transfer", *pair, "-o", tmp_path / "o.png", "--size", 100000, "--steps", 1, "--force")
    cli_error(proc, "memory", "--size")


@NO_CUDA
def test_c3_stylize_cuda_without_gpu(vgg):
    with raises_with(ValueError, "cuda"):
        stlib.stylize(torch.rand(1, 3, 48, 64), torch.rand(1, 3, 48, 64), model=vgg, device="cuda", size=64,
                      steps=1, progress=False)


@pytest.mark.parametrize("kwargs,exc,words", [
    ({"optimizer": "sgd"}, ValueError, ["optimizer"]), ({"precision": "fp8"}, ValueError, ["precision"]),
    ({"init": "sketch"}, ValueError, ["init"]), ({"every": 0}, ValueError, ["every"]),
    ({"content_weight": -1}, ValueError, ["content_weight"]), ({"style_weight": float("nan")}, ValueError, ["style_weight"]),
    ({"style_layers": ["relu9_1"]}, KeyError, ["relu9_1", "not a VGG-19 layer"]),
    ({"scales": [0.5, 0.25]}, ValueError, ["scales"]), ({"steps": -1}, ValueError, ["steps"]),
    ({"preserve_color": "sepia"}, ValueError, ["preserve_color"]), ({"scales": "many"}, ValueError, ["scales"]),
])
def test_c0_stylize_known_bad_arguments(vgg, kwargs, exc, words):
    content = torch.rand(1, 3, 48, 64)
    args = {"size": 64, "steps": 1, **kwargs}
    with raises_with(exc, *words):
        stlib.stylize(content, content, model=vgg, progress=False, **args)


@pytest.mark.parametrize("source,exc,words", [
    (None, ImageLoadError, ["cannot read a NoneType"]), (42, ImageLoadError, ["cannot read a int"]),
    (torch.rand(2, 3, 40, 40), ImageLoadError, ["2 images"]), (torch.rand(40, 40, 3), ImageLoadError, ["channels-last"]),
    (np.zeros((3, 40, 40), np.uint8), ImageLoadError, ["channels-first"]),
    (np.zeros((40, 40), np.int32), ImageLoadError, ["dtype int32"]), ("", ImageLoadError, ["empty"]),
    ("no-such-bundled-name", ImageLoadError, ["no image file", "bundled"]),
])
def test_c0_load_image_bad_sources(source, exc, words):
    with raises_with(exc, *words):
        stlib.load_image(source)


@pytest.mark.parametrize("args,words", [
    (["--steps", "-1"], ["--steps"]), (["--size", "0"], ["--size"]), (["--scales", "0"], ["--scales"]),
    (["--size", "big"], ["--size"]),
])
def test_c0_cli_usage_errors(pair, tmp_path, args, words):
    proc = cli("transfer", *pair, "-o", tmp_path / "o.png", *args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert all(w in proc.stderr for w in words)


def test_c0_cli_style_weight_nan(pair, tmp_path):
    cli_error(cli("transfer", *pair, "-o", tmp_path / "o.png", "--style-weight", "nan", "--no-estimate"),
              "style_weight")


def test_c0_cli_unknown_device(pair, tmp_path):
    cli_error(cli("transfer", *pair, "-o", tmp_path / "o.png", "--device", "tpu"), "tpu")


# ----------------------------------------------------------------------------------------------- files
@pytest.mark.parametrize("kind,words", [
    ("missing", ["no image file"]), ("folder", ["is a folder"]), ("text", ["not an image"]),
    ("empty", ["not an image"]), ("truncated", ["truncated"]), ("tiny", ["at least 32"]),
])
def test_c0_bad_image_files(tmp_path, kind, words):
    path = tmp_path / f"{kind}.png"
    if kind == "folder":
        path.mkdir()
    elif kind == "text":
        path.write_text("<html>not a picture</html>")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)).save(buf, "PNG")
        path.write_bytes(buf.getvalue()[:5000])
    elif kind == "tiny":
        gradient(20, 20).save(path)
    with raises_with(ImageLoadError, *words):
        stlib.load_image(path)


def test_c0_cli_missing_content(pair, tmp_path):
    cli_error(cli("transfer", tmp_path / "nope.png", pair[1], "-o", tmp_path / "o.png"), "no image file")


def test_c0_cli_output_suffix(pair, tmp_path):
    cli_error(cli("transfer", *pair, "-o", tmp_path / "o.gif"), ".png or .jpg")


def test_c0_image_bomb_needs_max_size(tmp_path):
    Image.new("1", (14000, 13000)).save(tmp_path / "bomb.png")
    with raises_with(ImageLoadError, "max_size"):
        stlib.load_image(tmp_path / "bomb.png")
    assert max(stlib.load_image(tmp_path / "bomb.png", max_size=64).shape[-2:]) == 64


# ----------------------------------------------------------------------------------------------- outputs
@pytest.mark.parametrize("which", ["content", "style", "content-dotted"])
def test_c6_never_overwrite_an_input(pair, tmp_path, which):
    target = {"content": pair[0], "style": pair[1],
              "content-dotted": tmp_path / "sub" / ".." / "content.png"}[which]
    (tmp_path / "sub").mkdir(exist_ok=True)
    before = sha(pair[0]), sha(pair[1])
    proc = cli("transfer", *pair, "-o", target, "--size", 64, "--steps", 1, "--no-estimate")
    cli_error(proc, "overwrite", "content" if which != "style" else "style")
    assert (sha(pair[0]), sha(pair[1])) == before


def test_c6_never_overwrite_a_bundled_image_named_as_input(pair, tmp_path):
    bundled = tmp_path / "images" / "content" / "photo.png"
    bundled.parent.mkdir(parents=True)
    shutil.copyfile(pair[0], bundled)
    before = sha(bundled)
    proc = cli("transfer", "photo", pair[1], "-o", bundled, "--size", 64, "--steps", 1, "--no-estimate",
               STLIB_IMAGES=str(tmp_path / "images"))
    cli_error(proc, "overwrite", "content")
    assert sha(bundled) == before


def test_c6_export_never_overwrites_its_source(export_file):
    before = sha(export_file)
    cli_error(cli("weights", "export", "--source", export_file, "-o", export_file), "overwrite")
    assert sha(export_file) == before


@pytest.mark.parametrize("kind,words", [("under_file", ["not a folder"]), ("is_folder", ["is a folder"]),
                                        ("long_name", ["too long"])])
def test_c6_unwritable_output_is_refused_before_the_run(pair, tmp_path, kind, words):
    if kind == "under_file":
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "o.png"
    elif kind == "is_folder":
        out = tmp_path / "o.png"
        out.mkdir()
    else:
        out = tmp_path / ("x" * 300 + ".png")
    proc = cli("transfer", *pair, "-o", out, "--size", 64, "--steps", 1, "--no-estimate")
    cli_error(proc, *words)
    assert "weights:" not in proc.stdout  # refused before the model was even loaded


@NO_ROOT
def test_c6_read_only_folder_is_refused_before_the_run(pair, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        proc = cli("transfer", *pair, "-o", folder / "o.png", "--size", 64, "--steps", 1, "--no-estimate")
        cli_error(proc, "cannot write")
        assert "weights:" not in proc.stdout
    finally:
        folder.chmod(0o700)


def test_c0_existing_unrelated_output_is_replaced(pair, tmp_path):
    out = tmp_path / "o.png"
    Image.new("RGB", (5, 5)).save(out)
    proc = cli("transfer", *pair, "-o", out, "--size", 64, "--steps", 1, "--no-estimate")
    assert proc.returncode == 0, proc.stderr
    assert Image.open(out).size == (64, 48)


def test_c6_result_save_failure_names_the_path(tmp_path):
    (tmp_path / "afile").write_text("x")
    result = stlib.StylizeResult(image=torch.rand(1, 3, 8, 8), history=[], elapsed=0, setup_time=0, steps=0,
                                 weights_source="random", device="cpu", precision="fp32")
    with raises_with(OSError, str(tmp_path / "afile")):
        result.save(tmp_path / "afile" / "x.png")


# ----------------------------------------------------------------------------------------------- Ctrl-C
class _Proc:
    """A running ``stlib`` whose stdout and stderr are collected by threads (tqdm writes '\\r' updates)."""

    def __init__(self, args, cwd):
        self.p = subprocess.Popen([*STLIB_CMD, *map(str, args)], cwd=cwd, env=cli_env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.out, self.err = [], []
        for stream, sink in ((self.p.stdout, self.out), (self.p.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    @staticmethod
    def _pump(stream, sink):
        for chunk in iter(lambda: stream.read(1), ""):
            sink.append(chunk)

    def wait_for(self, pattern: str, stream: str = "err", timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if re.search(pattern, "".join(self.err if stream == "err" else self.out)):
                return
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"never saw {pattern!r}: {''.join(self.out)} {''.join(self.err)}")

    def finish(self, timeout: float = 60):
        rc = self.p.wait(timeout=timeout)
        time.sleep(0.2)
        return rc, "".join(self.out), "".join(self.err)


def _long_run(pair, out):
    return ["transfer", *pair, "-o", out, "--size", 64, "--steps", 100000, "--optimizer", "adam", "--no-estimate"]


@pytest.mark.parametrize("delay", [0.4, 1.2, 2.5])
def test_c5_ctrl_c_during_start_up(pair, tmp_path, delay):
    run = _Proc(_long_run(pair, tmp_path / "o.png"), tmp_path)
    time.sleep(delay)
    if "stylize:" in "".join(run.err):
        pytest.skip("this machine started the run before the delay")  # pragma: no cover
    run.p.send_signal(signal.SIGINT)
    rc, out, err = run.finish()
    assert rc == 130, (rc, out, err)
    assert "Traceback" not in err and "stlib: interrupted" in err, err


def test_c5_ctrl_c_after_model_load(pair, tmp_path):
    run = _Proc(_long_run(pair, tmp_path / "o.png"), tmp_path)
    run.wait_for(r"weights: ", stream="out")
    run.p.send_signal(signal.SIGINT)
    rc, out, err = run.finish()
    assert rc == 130 and "Traceback" not in err and "stlib: interrupted" in err, (rc, out, err)


@pytest.mark.parametrize("presses", [1, 2])
def test_c5_ctrl_c_mid_run_saves_the_best_image(pair, tmp_path, presses):
    out = tmp_path / "o.png"
    run = _Proc(_long_run(pair, out), tmp_path)
    run.wait_for(r"stylize: .*\| *[1-9]\d*/100000")
    for _ in range(presses):
        run.p.send_signal(signal.SIGINT)
        time.sleep(0.3)
    rc, stdout, err = run.finish()
    assert rc == 130, (rc, stdout, err)
    assert "Traceback" not in err and "stlib: interrupted" in err, err
    assert f"saved {out}" in stdout
    assert Image.open(out).size == (64, 48)


def test_c6_save_failure_after_the_run_goes_to_a_named_fallback(pair, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    run = _Proc(_long_run(pair, folder / "o.png"), tmp_path)
    run.wait_for(r"stylize: .*\| *[1-9]\d*/100000")
    shutil.rmtree(folder)
    folder.write_text("now a file")  # the output folder became a file while the run went on
    run.p.send_signal(signal.SIGINT)
    rc, stdout, err = run.finish()
    assert rc != 0 and "Traceback" not in err, (rc, stdout, err)
    match = re.search(r"saved the result to (\S+\.png) instead", stdout + err)
    assert match, stdout + err
    fallback = Path(match.group(1))
    fallback = fallback if fallback.is_absolute() else tmp_path / fallback
    assert Image.open(fallback).size == (64, 48)


def test_c0_stylize_returns_best_image_on_keyboard_interrupt(vgg):
    def stop_at_3(info):
        if info.step == 3:
            raise KeyboardInterrupt

    content = torch.rand(1, 3, 48, 64)
    result = stlib.stylize(content, torch.rand(1, 3, 40, 40), model=vgg, size=64, steps=10, every=1,
                           callback=stop_at_3, progress=False)
    assert result.stop_reason == "interrupted" and torch.isfinite(result.image).all() and result.steps == 3


# ----------------------------------------------------------------------------------------------- downloads
class _Handler(http.server.BaseHTTPRequestHandler):
    """Routes of the local test server; every route ends by itself within ``LIMIT_S`` seconds."""

    LIMIT_S = 12.0
    png_bytes = b""

    def log_message(self, *args):  # quiet
        pass

    def _head(self, length=None, ctype="image/png"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def do_GET(self):  # noqa: N802 (http.server's name)
        end = time.monotonic() + self.LIMIT_S
        try:
            if self.path == "/slow":  # one byte every 0.5 s: each read is quick, the whole never ends
                self._head(len(self.png_bytes))
                for b in self.png_bytes:
                    if time.monotonic() > end:
                        return
                    self.wfile.write(bytes([b]))
                    self.wfile.flush()
                    time.sleep(0.5)
            elif self.path == "/stall":  # headers never come
                while time.monotonic() < end:
                    time.sleep(0.2)
            elif self.path == "/declared-huge":
                self._head(5 * 2**30)
                self.wfile.write(b"\0" * 1024)
            elif self.path == "/endless":  # no Content-Length, fast stream
                self._head()
                chunk = b"\0" * 65536
                while time.monotonic() < end:
                    self.wfile.write(chunk)
            elif self.path == "/image.png":
                self._head(len(self.png_bytes))
                self.wfile.write(self.png_bytes)
            elif self.path == "/page.html":
                body = b"<html><body>a web page</body></html>"
                self._head(len(body), "text/html")
                self.wfile.write(body)
            else:
                self.send_error(404, "Not Found")
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture(scope="module")
def server():
    buf = io.BytesIO()
    gradient().save(buf, "PNG")
    _Handler.png_bytes = buf.getvalue()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("route", ["/slow", "/stall"])
def test_c4_slow_url_hits_the_total_deadline(server, monkeypatch, route):
    monkeypatch.setenv("STLIB_DOWNLOAD_DEADLINE", "2")
    t0 = time.monotonic()
    with raises_with(ImageLoadError, "longer than 2", "download"):
        stlib.load_image(server + route)
    assert time.monotonic() - t0 < 10  # the deadline (2 s) held; the server itself gives up after 12 s


@pytest.mark.parametrize("route", ["/declared-huge", "/endless"])
def test_c4_download_size_cap(server, monkeypatch, route):
    monkeypatch.setenv("STLIB_DOWNLOAD_MAX_MB", "1")
    t0 = time.monotonic()
    with raises_with(ImageLoadError, "larger than 1 MB"):
        stlib.load_image(server + route)
    assert time.monotonic() - t0 < 10  # the deadline (2 s) held; the server itself gives up after 12 s


def test_c4_default_limits_are_finite():
    from stlib import downloads

    assert 0 < downloads.deadline_s(downloads.IMAGE_DEADLINE_S) <= 300
    assert 0 < downloads.max_bytes(downloads.IMAGE_MAX_BYTES) <= 2**30


def test_c4_weights_download_has_a_deadline(server, monkeypatch, tmp_path):
    monkeypatch.setenv("STLIB_DOWNLOAD_DEADLINE", "2")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    t0 = time.monotonic()
    with raises_with(WeightsError, "longer than 2"):
        stlib.weights.download_imagenet(url=server + "/slow", progress=False)
    assert time.monotonic() - t0 < 10  # the deadline (2 s) held; the server itself gives up after 12 s
    assert not list(tmp_path.rglob("*.pth"))  # no partial file left behind


def test_c4_weights_download_size_cap(server, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with raises_with(WeightsError, "larger than"):
        stlib.weights.download_imagenet(url=server + "/declared-huge", progress=False)


def test_c4_cli_slow_url(server, pair, tmp_path):
    t0 = time.monotonic()
    proc = cli("transfer", server + "/slow", pair[1], "-o", tmp_path / "o.png", "--size", 64,
               STLIB_DOWNLOAD_DEADLINE="2")
    cli_error(proc, "longer than 2")
    assert time.monotonic() - t0 < 60


def test_c4_cli_weights_download_slow(server, tmp_path):
    proc = cli("weights", "download", "--url", server + "/slow", STLIB_DOWNLOAD_DEADLINE="2", TORCH_HOME=str(tmp_path))
    cli_error(proc, "longer than 2")


def test_c0_url_image_loads(server):
    assert tuple(stlib.load_image(server + "/image.png").shape) == (1, 3, 48, 64)


@pytest.mark.parametrize("route,words", [("/missing", ["HTTP 404"]), ("/page.html", ["not an image"])])
def test_c0_url_errors(server, route, words):
    with raises_with(ImageLoadError, *words):
        stlib.load_image(server + route)


def test_c0_url_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with raises_with(ImageLoadError, "Could not reach"):
        stlib.load_image(f"http://127.0.0.1:{port}/x.png")


# ----------------------------------------------------------------------------------------------- messages
@pytest.fixture(scope="module")
def huge_photo(tmp_path_factory):
    """A 196-megapixel (14000 x 14000) photo, over Pillow's decompression-bomb limit; a small file (1 bit)."""
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    img = Image.new("1", (14000, 14000), 0)
    img.paste(1, (0, 0, 7000, 14000))
    img.save(path)
    return path


def test_c7_huge_photo_works_from_the_cli(huge_photo, pair, tmp_path):
    out = tmp_path / "o.png"
    proc = cli("transfer", huge_photo, pair[1], "-o", out, "--size", 64, "--steps", 1, "--no-estimate")
    assert proc.returncode == 0, proc.stderr
    assert Image.open(out).size == (64, 64)


def test_c7_huge_photo_works_in_stylize(huge_photo, pair, vgg):
    result = stlib.stylize(huge_photo, pair[1], model=vgg, size=64, steps=0, progress=False)
    assert tuple(result.image.shape[-2:]) == (64, 64)
    assert result.image[0, 0, 32, 10] > 0.9 and result.image[0, 0, 32, 54] < 0.1  # white left half


@pytest.mark.parametrize("which,label", [("content", "content image"), ("style", "style image")])
def test_c7_too_small_after_resizing_says_which_and_why(vgg, which, label):
    thin, ok = torch.rand(1, 3, 40, 400), torch.rand(1, 3, 48, 64)
    content, style = (thin, ok) if which == "content" else (ok, thin)
    with raises_with(ValueError, label, "size=64", "--size"):
        stlib.stylize(content, style, model=vgg, size=64, steps=1, progress=False)


def test_c7_second_style_too_small(vgg):
    ok = torch.rand(1, 3, 48, 64)
    with raises_with(ValueError, "style image 2", "size=64"):
        stlib.stylize(ok, [ok, torch.rand(1, 3, 40, 400)], model=vgg, size=64, steps=1, progress=False)


def test_c7_cli_too_small_after_resizing(pair, tmp_path):
    png(tmp_path / "thin.png", gradient(400, 40))
    proc = cli("transfer", pair[0], tmp_path / "thin.png", "-o", tmp_path / "o.png", "--size", 64, "--steps", 1,
               "--no-estimate")
    cli_error(proc, "style image", "--size")


def test_c7_coarse_scale_too_small_names_scales(vgg):
    ok = torch.rand(1, 3, 48, 64)
    with raises_with(ValueError, "content image", "scales"):
        stlib.stylize(torch.rand(1, 3, 40, 120), ok, model=vgg, size=60, scales=2, steps=1, progress=False)
