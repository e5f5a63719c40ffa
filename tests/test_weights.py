"""Weights: seeded random weights, export/load round trips, every corrupt-file case, the "auto" order, and the
download path against a local HTTP server (never the internet)."""

import hashlib
import http.server
import shutil
import socket
import threading
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

import stlib
from stlib import weights as W
from stlib.layers import VGG19_LAYERS
from stlib.weights import OfflineWeightsWarning, WeightsError


# --------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def rand_state():
    return W.random_weights()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Exports of the random weights: {"float16": path, "float32": path} (each with its .sha256 side file)."""
    folder = tmp_path_factory.mktemp("exported")
    return {dtype: W.export_weights(folder / f"vgg-{dtype[-2:]}bit.pth", "random", dtype)
            for dtype in ("float16", "float32")}


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache in tmp_path, and no weights choice from the environment."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("STLIB_WEIGHTS", raising=False)
    monkeypatch.delenv("STLIB_OFFLINE", raising=False)
    assert W.cache_dir() == tmp_path / "torch" / "hub" / "checkpoints"
    return W.cache_dir()


def copy_without_side_file(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


def tensor_data_offset(path: Path) -> int:
    """A byte offset in the middle of the largest tensor stored in a torch zip checkpoint."""
    with zipfile.ZipFile(path) as archive:
        entry = max(archive.infolist(), key=lambda e: e.file_size)
    with open(path, "rb") as f:
        f.seek(entry.header_offset)
        header = f.read(30)
    start = entry.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
    return start + entry.file_size // 2


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def assert_states_equal(a, b):
    assert set(a) == set(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


# --------------------------------------------------------------------------------------------- random
def test_random_weights_bit_identical_and_independent_of_global_seed(rand_state):
    torch.manual_seed(12345)
    torch.rand(100)
    again = W.random_weights()  # the fixture drew them under another global seed state
    after = torch.rand(3)
    assert_states_equal(again, rand_state)
    torch.manual_seed(12345)
    torch.rand(100)
    assert torch.equal(torch.rand(3), after), "random_weights consumed the global generator"


def test_random_weights_depend_on_their_own_seed(rand_state):
    other = W.random_weights(seed=W.RANDOM_SEED + 1)
    assert not torch.equal(other["conv1_1.weight"], rand_state["conv1_1.weight"])


def test_random_weights_shapes_and_he_scale(rand_state):
    assert len(rand_state) == 32
    w = rand_state["conv3_1.weight"]
    assert w.shape == (256, 128, 3, 3)
    fan_in = 128 * 9
    assert w.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.05)
    assert torch.all(rand_state["conv3_1.bias"] == 0)


def test_load_vgg19_random_sets_source(rand_state):
    model = stlib.load_vgg19("random")
    assert model.weights_source == "random"
    assert torch.equal(model.layers.conv5_4.weight, rand_state["conv5_4.weight"])
    for name, tensor in model.state_dict().items():  # built on "meta", loaded with assign=True: all real now
        assert tensor.device.type == "cpu" and tensor.is_floating_point(), name
        assert not tensor.requires_grad and torch.isfinite(tensor).all(), name
    assert all(isinstance(p, torch.nn.Parameter) for p in model.parameters())
    torch.testing.assert_close(model.std.flatten(), torch.tensor(stlib.model.IMAGENET_STD))


# --------------------------------------------------------------------------------------------- export / load
@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_export_then_load_round_trip(exported, rand_state, dtype):
    path = exported[dtype]
    assert path.with_name(path.name + ".sha256").read_text().split()[0] == W.sha256_file(path)
    state, info = W.read_weights_file(path)
    assert info["format"] == W.EXPORT_FORMAT and info["dtype"] == dtype and info["origin"] == "random"
    assert all(v.dtype == torch.float32 for v in state.values())
    if dtype == "float32":
        assert_states_equal(state, rand_state)
    else:
        for key, value in rand_state.items():
            assert torch.equal(state[key], value.half().float()), key
            torch.testing.assert_close(state[key], value, rtol=1e-3, atol=1e-4)
    model = stlib.load_vgg19(path)
    assert model.weights_source == f"file:{path}"
    assert torch.equal(model.layers.conv2_1.weight, state["conv2_1.weight"])


def test_export_sizes(exported):
    # 20.0 M parameters: 2 bytes each in fp16, 4 in fp32 (plus a little pickle overhead)
    assert 39e6 < exported["float16"].stat().st_size < 41e6
    assert 79e6 < exported["float32"].stat().st_size < 81e6


def test_export_rejects_unknown_dtype(tmp_path):
    with pytest.raises(ValueError, match="float16"):
        W.export_weights(tmp_path / "x.pth", "random", "int8")


def test_torchvision_full_checkpoint_loads_features_only(tmp_path, rand_state):
    full = {}
    for key, value in rand_state.items():
        layer, kind = key.split(".")
        full[f"features.{VGG19_LAYERS.index(layer)}.{kind}"] = value
    # the real classifier is 548 MB; small stand-ins are enough to check it is skipped
    full.update({"classifier.0.weight": torch.ones(8, 4), "classifier.0.bias": torch.ones(8),
                 "classifier.6.weight": torch.ones(3, 8), "classifier.6.bias": torch.ones(3)})
    path = tmp_path / "vgg19-full.pth"
    torch.save(full, path)
    state, info = W.read_weights_file(path)
    assert info["format"] == "torchvision"
    assert_states_equal(state, rand_state)
    model = stlib.load_vgg19(path)
    assert model.weights_source == f"file:{path}"


def test_bare_features_state_dict_loads(tmp_path, rand_state):
    bare = {f"{VGG19_LAYERS.index(k.split('.')[0])}.{k.split('.')[1]}": v for k, v in rand_state.items()}
    path = tmp_path / "features.pth"
    torch.save(bare, path)
    assert_states_equal(W.read_weights_file(path)[0], rand_state)


def test_truncated_file(tmp_path, exported):
    src = exported["float16"]
    with_side = tmp_path / "with_side.pth"
    shutil.copyfile(src, with_side)
    shutil.copyfile(src.with_name(src.name + ".sha256"), with_side.with_name("with_side.pth.sha256"))
    without_side = tmp_path / "without_side.pth"
    for path in (with_side, without_side):
        data = src.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=r"checksum mismatch.*(download|export)"):
        W.read_weights_file(with_side)
    with pytest.raises(WeightsError, match=r"truncated.*(download|export)"):
        W.read_weights_file(without_side)


def test_one_flipped_byte_in_tensor_data(tmp_path, exported):
    src = exported["float16"]
    path = copy_without_side_file(src, tmp_path / "flipped.pth")
    flip_byte(path, tensor_data_offset(path))
    with pytest.raises(WeightsError, match="corrupt.*[Ee]xport it again"):
        W.read_weights_file(path)  # caught by the tensor checksum embedded at export
    side = path.with_name(path.name + ".sha256")
    shutil.copyfile(src.with_name(src.name + ".sha256"), side)
    with pytest.raises(WeightsError, match="checksum mismatch"):
        W.read_weights_file(path)  # and by the side file, before the file is even opened


def test_sha256_side_file_mismatch(tmp_path, exported):
    path = copy_without_side_file(exported["float32"], tmp_path / "good.pth")
    path.with_name("good.pth.sha256").write_text("0" * 64 + "  good.pth\n")
    with pytest.raises(WeightsError, match="checksum mismatch.*expected sha256 0000"):
        W.read_weights_file(path)


def test_not_a_checkpoint(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("these are not the weights you are looking for\n")
    with pytest.raises(WeightsError, match="not a PyTorch checkpoint"):
        W.read_weights_file(text)
    listing = tmp_path / "list.pth"
    torch.save([1, 2, 3], listing)
    with pytest.raises(WeightsError, match="holds a list"):
        W.read_weights_file(listing)
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(WeightsError, match="not a VGG-19 weights file.*conv1_1.weight"):
        W.read_weights_file(other)


def test_wrong_shape(tmp_path, rand_state):
    state = dict(rand_state)
    state["conv2_1.weight"] = torch.zeros(128, 32, 3, 3)
    path = tmp_path / "wrong.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"conv2_1.weight has shape \(128, 32, 3, 3\).*\(128, 64, 3, 3\)"):
        W.read_weights_file(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(WeightsError, match="does not exist.*STLIB_WEIGHTS"):
        W.read_weights_file(tmp_path / "nope.pth")
    with pytest.raises(WeightsError, match="does not exist"):
        stlib.load_vgg19(tmp_path / "nope.pth")
    with pytest.raises(WeightsError, match="is a folder"):
        W.read_weights_file(tmp_path)


# --------------------------------------------------------------------------------------------- auto
def test_auto_uses_stlib_weights_env(hub, monkeypatch, exported):
    monkeypatch.setenv("STLIB_WEIGHTS", str(exported["float32"]))
    state, source = W.resolve_weights("auto")
    assert source == f"file:{exported['float32']}"
    monkeypatch.setenv("STLIB_WEIGHTS", "random")
    assert W.resolve_weights("auto")[1] == "random"


def test_auto_uses_the_cached_imagenet_checkpoint(hub, monkeypatch, rand_state):
    monkeypatch.setenv("STLIB_OFFLINE", "1")  # so a failure here could never turn into a download
    hub.mkdir(parents=True)
    cached = W.cached_imagenet_path()
    assert cached.parent == hub and cached.name.startswith("vgg19-")
    torch.save({f"features.{VGG19_LAYERS.index(k.split('.')[0])}.{k.split('.')[1]}": v
                for k, v in rand_state.items()}, cached)
    # the name carries torchvision's hash prefix; a side file states the real digest of this stand-in
    cached.with_name(cached.name + ".sha256").write_text(W.sha256_file(cached) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", OfflineWeightsWarning)
        state, source = W.resolve_weights("auto")
    assert source == "imagenet"
    assert_states_equal(state, rand_state)


def test_auto_uses_a_cached_export_and_reports_its_origin(hub, monkeypatch, exported):
    monkeypatch.setenv("STLIB_OFFLINE", "1")
    hub.mkdir(parents=True)
    shutil.copyfile(exported["float16"], hub / W.EXPORT_NAME)
    state, source = W.resolve_weights("auto")
    assert source != "imagenet" and source.endswith(W.EXPORT_NAME)  # an export of random weights is no ImageNet
    assert torch.equal(state["conv1_1.weight"], W.read_weights_file(exported["float16"])[0]["conv1_1.weight"])


def test_offline_falls_back_to_random_with_one_warning(hub, monkeypatch):
    monkeypatch.setenv("STLIB_OFFLINE", "1")
    monkeypatch.setattr(W, "__warningregistry__", {}, raising=False)  # forget earlier showings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's own setting: once per code location
        first = stlib.load_vgg19("auto")
        second = stlib.load_vgg19("auto")
    offline = [w for w in caught if issubclass(w.category, OfflineWeightsWarning)]
    assert len(offline) == 1
    assert "RANDOM" in str(offline[0].message) and "STLIB_WEIGHTS" in str(offline[0].message)
    assert first.weights_source == second.weights_source == "random"
    assert not any(p.exists() for p in (hub / W.EXPORT_NAME, W.cached_imagenet_path()))


# --------------------------------------------------------------------------------------------- download
class _Handler(http.server.SimpleHTTPRequestHandler):
    hits: list

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.hits.append(self.path)
        super().do_GET()

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory, exported):
    """A local HTTP server (127.0.0.1, free port) serving a real checkpoint under correct and wrong hash names."""
    folder = tmp_path_factory.mktemp("served")
    src = exported["float16"]
    digest = W.sha256_file(src)
    good = f"vgg19-{digest[:8]}.pth"
    wrong_prefix = "00000000" if not digest.startswith("00000000") else "11111111"
    shutil.copyfile(src, folder / good)
    shutil.copyfile(src, folder / f"vgg19-{wrong_prefix}.pth")
    hits: list = []
    handler = type("Handler", (_Handler,), {"hits": hits})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **k: handler(*a, directory=str(folder), **k))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield {"base": base, "good": good, "wrong": f"vgg19-{wrong_prefix}.pth", "hits": hits}
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def test_download_into_hub_cache_then_reuse(hub, server, no_proxy, rand_state):
    url = f"{server['base']}/{server['good']}"
    before = len(server["hits"])
    path = W.download_imagenet(url=url, progress=False)
    assert path == hub / server["good"] and path.exists()
    assert len(server["hits"]) == before + 1
    state, info = W.read_weights_file(path)
    assert info["sha256"].startswith(server["good"][6:14])
    torch.testing.assert_close(state["conv4_2.weight"], rand_state["conv4_2.weight"], rtol=1e-3, atol=1e-4)
    again = W.download_imagenet(url=url, progress=False)
    assert again == path and len(server["hits"]) == before + 1  # served from the cache


def test_download_wrong_hash_leaves_nothing(hub, server, no_proxy):
    with pytest.raises(WeightsError, match="corrupt"):
        W.download_imagenet(url=f"{server['base']}/{server['wrong']}", progress=False)
    leftovers = [p for p in hub.rglob("*") if p.is_file()] if hub.exists() else []
    assert leftovers == []


def test_download_404(hub, server, no_proxy):
    with pytest.raises(WeightsError, match="HTTP 404"):
        W.download_imagenet(url=f"{server['base']}/vgg19-12345678.pth", progress=False)
    assert not (hub / "vgg19-12345678.pth").exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_unreachable(hub, no_proxy):
    url = f"http://127.0.0.1:{_closed_port()}/vgg19-12345678.pth"
    with pytest.raises(WeightsError, match="offline"):
        W.download_imagenet(url=url, progress=False)


def test_auto_falls_back_to_random_when_the_download_fails(hub, monkeypatch, no_proxy, rand_state):
    url = f"http://127.0.0.1:{_closed_port()}/vgg19-12345678.pth"
    monkeypatch.setattr(W, "imagenet_url", lambda: url)
    with pytest.warns(OfflineWeightsWarning):
        warnings.simplefilter("always", OfflineWeightsWarning)
        state, source = W.resolve_weights("auto")
    assert source == "random"
    assert_states_equal(state, rand_state)


def test_hash_prefix_is_checked_for_named_files(tmp_path, exported):
    digest = W.sha256_file(exported["float16"])
    good = copy_without_side_file(exported["float16"], tmp_path / f"vgg19-{digest[:8]}.pth")
    assert W.verify_checksum(good) == digest
    assert W.verify_checksum(copy_without_side_file(good, tmp_path / "plain.pth")) is None
    bad = copy_without_side_file(good, tmp_path / f"vgg19-{'f' if digest[0] != 'f' else 'e'}{digest[1:8]}.pth")
    with pytest.raises(WeightsError, match="checksum mismatch"):
        W.verify_checksum(bad)
    assert hashlib.sha256(good.read_bytes()).hexdigest() == digest


def test_exported_random_weights_keep_the_offline_preset(exported):
    # an exported copy of the offline weights must not be mistaken for ImageNet's (whose preset barely stylises)
    source = stlib.load_vgg19(exported["float16"]).weights_source
    assert source.startswith("file:")
    assert W.weights_origin(source) == "random"
    assert stlib.preset_for(source) is stlib.presets.OFFLINE
    assert stlib.preset_for("imagenet") is stlib.presets.IMAGENET
