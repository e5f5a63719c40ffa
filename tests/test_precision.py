"""stlib.engine.precision: choosing fp32/bf16/fp16, autocast, memory layout, and float32 Gram matrices under autocast."""


import pytest
import torch

import stlib
from stlib.engine import precision as P
from stlib.gram import gram_matrix
from stlib.layers import CONTENT_LAYERS, STYLE_LAYERS
from stlib.transfer import compute_targets, objective

CPU = torch.device("cpu")
CUDA = torch.device("cuda")


@pytest.fixture
def cpu_flags(monkeypatch):
    """Pretend this CPU has the given /proc/cpuinfo flags."""

    def set_flags(*flags):
        monkeypatch.setattr(P, "_cpuinfo_flags", lambda path="/proc/cpuinfo": tuple(flags))

    return set_flags


# ------------------------------------------------------------------------------------------ choosing
def test_explicit_precisions_pass_through():
    for name in ("fp32", "bf16"):
        assert P.resolve_precision(name, CPU) == name
    assert P.resolve_precision("fp16", CUDA) == "fp16"


def test_unknown_precision_names_the_choices():
    with pytest.raises(ValueError, match="fp32.*bf16.*fp16"):
        P.resolve_precision("fp64", CPU)


def test_fp16_on_cpu_is_a_clear_error():
    with pytest.raises(ValueError, match="only for GPUs.*'bf16' or 'fp32'"):
        P.resolve_precision("fp16", CPU)


def test_stylize_fp16_on_cpu_fails_before_any_work(vgg, tiny_pair):
    with pytest.raises(ValueError, match="only for GPUs"):
        stlib.stylize(*tiny_pair, precision="fp16", model=vgg, size=64, steps=1, progress=False)


def test_auto_on_cpu_follows_the_bf16_instructions(cpu_flags):
    cpu_flags("fpu", "avx2", "avx512f", "amx_bf16", "amx_tile")
    assert P.resolve_precision("auto", CPU) == "bf16"
    cpu_flags("fpu", "avx2", "avx512_bf16")
    assert P.resolve_precision("auto", "cpu") == "bf16"
    cpu_flags("fpu", "sse4_2", "avx2", "avx512f")  # AVX-512 without BF16: bf16 would be emulated, slowly
    assert P.resolve_precision("auto", CPU) == "fp32"
    cpu_flags()  # no /proc/cpuinfo (macOS, Windows)
    assert P.resolve_precision("auto", CPU) == "fp32"


def test_cpuinfo_flags_are_parsed_from_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: amx_bf16 in a name does not count\n"
                    "flags\t\t: fpu avx2 avx512_bf16 amx_tile\n\nprocessor\t: 1\n")
    flags = P._cpuinfo_flags.__wrapped__(str(info))
    assert flags == ("fpu", "avx2", "avx512_bf16", "amx_tile")
    assert P.cpu_has_fast_bf16(flags) and not P.cpu_has_fast_bf16(("fpu", "avx2"))
    assert P._cpuinfo_flags.__wrapped__(str(tmp_path / "missing")) == ()


@pytest.mark.parametrize("capability, expected", [((9, 0), "bf16"), ((8, 0), "bf16"), ((8, 6), "bf16"),
                                                  ((7, 5), "fp16"), ((7, 0), "fp16"), ((6, 1), "fp32")])
def test_auto_on_cuda_follows_the_compute_capability(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert P.resolve_precision("auto", CUDA) == expected
    assert P.cuda_precision(capability) == expected


def test_auto_on_mps_is_fp32():
    assert P.resolve_precision("auto", torch.device("mps")) == "fp32"


def test_autocast_contexts():
    with P.autocast("fp32", CPU):
        assert not P.autocast_enabled("cpu")
    with P.autocast("bf16", CPU):
        assert P.autocast_enabled("cpu") and P.autocast_dtype("cpu") == torch.bfloat16
        assert not P.autocast_enabled("cuda")
    assert not P.autocast_enabled("cpu")
    with pytest.raises(ValueError, match="autocast precision"):
        P.autocast("auto", CPU)


def test_memory_format_is_channels_last_only_for_reduced_precision():
    assert P.memory_format("bf16", CPU) == torch.channels_last
    assert P.memory_format("fp16", CUDA) == torch.channels_last
    assert P.memory_format("fp32", CPU) == torch.contiguous_format
    assert P.memory_format("bf16", torch.device("mps")) == torch.contiguous_format


# ------------------------------------------------------------------------------------ float32 Grams
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("normalize", [True, "hw", False])
@pytest.mark.parametrize("chunk", [P.GRAM_CHUNK_ELEMENTS, 13])  # 13 values: chunks of 2 positions, one ragged
@pytest.mark.parametrize("two", [False, True])
def test_fp32_gram_matches_gram_matrix_and_its_gradient(dtype, channels_last, normalize, chunk, two):
    gen = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 6, 5, 7, generator=gen).to(dtype)
    if channels_last:
        feats = feats.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(2, 6, 6, generator=gen)
    a, b = feats.clone().requires_grad_(True), feats.clone().requires_grad_(True)
    got, want = P.fp32_gram(a, normalize, chunk_elements=chunk, two_products=two), gram_matrix(b, normalize)
    assert got.dtype == torch.float32 and got.shape == (2, 6, 6)
    # half-precision features on a CPU: two half-precision products (P._split_half_gram), whose second
    # result is rounded to bf16 - float32 sums to ~2^-17 (relative) instead of ~2^-24
    tol = 1e-5 if (two and dtype != torch.float32) else 1e-6
    torch.testing.assert_close(got, want, rtol=tol, atol=tol * float(want.abs().max()))
    (got * weight).sum().backward()
    (want * weight).sum().backward()
    assert a.grad.dtype == dtype and a.grad.shape == feats.shape
    if dtype == torch.float32:
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-5)
    else:  # bf16 features get a bf16 gradient, computed from bf16 operands: bf16-sized errors (2^-8)
        scale = b.grad.float().abs().max()
        assert (a.grad.float() - b.grad.float()).abs().max() <= 2 ** -6 * scale
        cosine = torch.nn.functional.cosine_similarity(a.grad.float().flatten(), b.grad.float().flatten(), dim=0)
        assert cosine > 0.999


def test_fp32_gram_backward_by_hand():
    # G = F F^T / n for one 2-channel, 1x2 map; d(sum(W * G))/dF = (W + W^T) F / n
    feats = torch.tensor([[[[1.0, 2.0]], [[3.0, -1.0]]]], requires_grad=True)
    gram = P.fp32_gram(feats, normalize="hw")
    torch.testing.assert_close(gram, torch.tensor([[[5.0, 1.0], [1.0, 10.0]]]) / 2)
    weight = torch.tensor([[[1.0, 2.0], [0.0, 1.0]]])
    (gram * weight).sum().backward()
    sym = torch.tensor([[2.0, 2.0], [2.0, 2.0]])
    expected = (sym @ torch.tensor([[1.0, 2.0], [3.0, -1.0]])) / 2
    torch.testing.assert_close(feats.grad[0, :, 0, :], expected)


def test_fp32_gram_keeps_no_float32_copy_of_bf16_features():
    feats = torch.randn(1, 8, 16, 16).bfloat16().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        P.fp32_gram(feats).sum()
    big = [t for t in saved if t.numel() >= feats.numel()]
    assert big and all(t.dtype == torch.bfloat16 for t in big)
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        gram_matrix(feats).sum()  # the plain version keeps a float32 copy: what fp32_gram avoids
    assert any(t.dtype == torch.float32 and t.numel() >= feats.numel() for t in saved)


def test_fp32_gram_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        P.fp32_gram(torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="normalize"):
        P.fp32_gram(torch.rand(1, 3, 4, 4), normalize="chw2")


def test_grams_and_losses_stay_fp32_under_autocast(vgg, tiny_pair):
    content, style = tiny_pair
    c_layers, s_layers = {n: 1.0 for n in CONTENT_LAYERS}, {n: 1.0 for n in STYLE_LAYERS}
    with P.autocast("bf16", CPU):
        feats = stlib.extract_features(vgg, content, ["relu2_1", "relu4_2"])
        assert feats["relu2_1"].dtype == torch.bfloat16  # the network does run in bf16 ...
        assert gram_matrix(feats["relu2_1"]).dtype == torch.float32  # ... its Grams do not
        assert P.fp32_gram(feats["relu2_1"]).dtype == torch.float32
        targets = compute_targets(vgg, content, [style], c_layers, s_layers, [1.0])
        terms = objective(vgg, content.clone(), targets, c_layers, s_layers, 1.0, 1e5, 1.0)
    assert all(g.dtype == torch.float32 for g in targets.style.values())
    assert all(t.dtype == torch.float32 for t in targets.content.values())
    assert all(terms[k].dtype == torch.float32 for k in ("content", "style", "tv", "total"))
    assert all(v.dtype == torch.float32 for v in terms["layers"].values())


# ----------------------------------------------------------------------------------- fp32 vs bf16
def _objective_and_grad(vgg, image, content, style, precision):
    c_layers, s_layers = {n: 1.0 for n in CONTENT_LAYERS}, {n: 1.0 for n in STYLE_LAYERS}
    x = image.clone().requires_grad_(True)
    model_fmt = P.memory_format(precision, CPU)
    with P.autocast(precision, CPU):
        targets = compute_targets(vgg, content, [style], c_layers, s_layers, [1.0])
        terms = objective(vgg, x.contiguous(memory_format=model_fmt), targets, c_layers, s_layers, 1.0, 1e5, 1.0)
    terms["total"].backward()
    return terms, x.grad


def test_bf16_objective_and_gradient_are_close_to_fp32(vgg, tiny_pair):
    content, style = tiny_pair
    image = (0.7 * content + 0.3 * torch.rand(content.shape, generator=torch.Generator().manual_seed(2)))
    ref, ref_grad = _objective_and_grad(vgg, image, content, style, "fp32")
    low, low_grad = _objective_and_grad(vgg, image, content, style, "bf16")
    for key in ("content", "style", "total"):
        assert float(low[key].detach()) == pytest.approx(float(ref[key].detach()), rel=0.05), key
    assert float(low["tv"]) == float(ref["tv"])  # TV is computed on the float32 image itself
    cosine = torch.nn.functional.cosine_similarity(low_grad.flatten(), ref_grad.flatten(), dim=0)
    assert cosine > 0.98
    assert low_grad.dtype == torch.float32


def test_channels_last_model_gives_the_same_fp32_features(vgg, tiny_pair):
    content = tiny_pair[0]
    want = stlib.extract_features(vgg, content, ["relu3_1"])["relu3_1"]
    vgg.to(memory_format=torch.channels_last)
    try:
        got = stlib.extract_features(vgg, content.contiguous(memory_format=torch.channels_last), ["relu3_1"])["relu3_1"]
    finally:
        vgg.to(memory_format=torch.contiguous_format)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_stylize_auto_runs_bf16_on_a_cpu_with_bf16_instructions(vgg, tiny_pair, cpu_flags):
    cpu_flags("amx_bf16")
    try:
        result = stlib.stylize(*tiny_pair, precision="auto", model=vgg, size=64, steps=5, progress=False)
    finally:
        vgg.to(memory_format=torch.contiguous_format)
    assert result.precision == "bf16"
    assert [h["precision"] for h in result.history] == ["bf16"] * 5
    assert torch.isfinite(result.image).all()
    losses = result.losses()
    assert min(losses) < losses[0]


def test_stylize_auto_without_fast_bf16_is_plain_fp32(vgg, tiny_pair, cpu_flags):
    cpu_flags("avx2")
    result = stlib.stylize(*tiny_pair, precision="auto", model=vgg, size=64, steps=3, progress=False)
    assert result.precision == "fp32"
    assert {h["precision"] for h in result.history} == {"fp32"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("fp32_output_bmm", [True, False])
def test_fp32_gram_of_half_features_on_cuda_is_exact_to_float32_sums(dtype, fp32_output_bmm, monkeypatch):
    """Tensor cores are used for bf16/fp16 features (a bmm with float32 output, or TF32 chunks where torch has no
    such bmm): the products are exact, so the Gram matrix matches a float64 reference to float32 accumulation
    accuracy (a result rounded to bf16 would be ~1e-3 off)."""
    if not fp32_output_bmm:
        monkeypatch.setattr(P, "_half_bmm_to_fp32", lambda device: False)
    gen = torch.Generator().manual_seed(0)
    feats = torch.rand(1, 64, 96, 80, generator=gen).to(dtype).cuda().contiguous(memory_format=torch.channels_last)
    before = torch.backends.cuda.matmul.allow_tf32
    gram = P.fp32_gram(feats, normalize=True)
    assert torch.backends.cuda.matmul.allow_tf32 == before  # the global setting is restored
    flat = feats.double().reshape(1, 64, -1)
    ref = flat @ flat.transpose(1, 2) / flat[0].numel()
    torch.testing.assert_close(gram.double(), ref, rtol=1e-5, atol=0)


# ------------------------------------------------------------------ the two-product half-precision Gram (CPU)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_split_half_gram_gives_float32_sums_where_the_kernel_allows(dtype):
    """high + low equals the float64 Gram of the (exact) half-precision values to float32 accuracy; one rounded
    product alone is ~100x further off. Skipped where the matmul does not fuse its input into the sums."""
    if not P._split_half_gram_is_exact(torch.device("cpu"), dtype):
        pytest.skip(f"this CPU's {dtype} matmul rounds before adding its input")
    rows = torch.rand(2, 96, 700, generator=torch.Generator().manual_seed(5)).to(dtype)
    exact = rows.double() @ rows.double().transpose(1, 2)
    got = P._split_half_gram(rows, rows.transpose(1, 2))
    one = torch.bmm(rows, rows.transpose(1, 2)).double()
    assert got.dtype == torch.float32
    err = float((got.double() - exact).abs().max() / exact.abs().max())
    assert err < 2e-5 and float((one - exact).abs().max() / exact.abs().max()) > 20 * err


@pytest.mark.parametrize("channels_last", [False, True])
def test_fp32_gram_of_bf16_features_matches_the_float64_gram(channels_last):
    f = torch.rand(1, 48, 20, 18, generator=torch.Generator().manual_seed(6)).bfloat16()
    if channels_last:
        f = f.contiguous(memory_format=torch.channels_last)
    flat = f.double().flatten(2)
    exact = flat @ flat.transpose(1, 2) / flat[0].numel()
    got = P.fp32_gram(f, two_products=True)
    assert got.dtype == torch.float32 and torch.allclose(got.double(), exact, rtol=2e-5, atol=0)
    assert torch.allclose(P.fp32_gram(f, two_products=False).double(), exact, rtol=2e-6, atol=0)  # float32 sums


def test_fp32_gram_falls_back_to_the_chunked_sum(monkeypatch):
    monkeypatch.setattr(P, "_split_half_gram_is_exact", lambda device, dtype: False)
    f = torch.rand(1, 16, 12, 12, generator=torch.Generator().manual_seed(7)).bfloat16()
    flat = f.double().flatten(2)
    got = P.fp32_gram(f, two_products=True)
    assert torch.allclose(got.double(), flat @ flat.transpose(1, 2) / flat[0].numel(), rtol=2e-6, atol=0)


# ------------------------------------------------------------------- gram_mse: G - A from one bf16 product
def _mse_oracle(f: torch.Tensor, target: torch.Tensor, divisor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The float64 loss mean((F F^T / n - A)^2) and its gradient, by hand: 2 (D + D^T) F / (n * numel(D)), D = G - A."""
    flat = f.double().flatten(2)  # (B, C, P) in NCHW order whatever the layout
    diff = flat @ flat.transpose(1, 2) / divisor - target.double()
    grad = 2 * (diff + diff.transpose(1, 2)) @ flat / (divisor * diff.numel())
    return diff.square().mean(), grad.view(f.shape)


def _cpu_bf16_exact() -> bool:
    return P._split_half_gram_is_exact(torch.device("cpu"), torch.bfloat16)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("normalize, divisor", [(True, 48 * 20 * 18), ("hw", 20 * 18), (False, 1)])
def test_gram_mse_matches_the_float64_oracle(channels_last, normalize, divisor):
    gen = torch.Generator().manual_seed(8)
    f = torch.rand(2, 48, 20, 18, generator=gen).bfloat16()
    if channels_last:
        f = f.contiguous(memory_format=torch.channels_last)
    target = torch.rand(1, 48, 48, generator=gen) * float(f.double().flatten(2)[0].square().sum(1).mean()) / divisor
    x = f.clone(memory_format=torch.channels_last if channels_last else torch.contiguous_format).requires_grad_(True)
    loss = P.gram_mse(x, target, normalize)
    loss.backward()
    want, want_grad = _mse_oracle(f, target, divisor)
    # each entry of G - A is rounded to bf16 (2^-9 of itself, in random directions): the mean of the
    # squares moves by ~2 * 2^-9 / sqrt(entries), 6e-5 here; the two-product Gram is float32-close to G
    assert loss.dtype == torch.float32 and abs(float(loss) - float(want)) <= 3e-4 * float(want)
    assert abs(float(P.gram_mse(f, target, normalize, fused=False)) - float(want)) <= 1e-5 * float(want)
    scale = float(want_grad.abs().max())  # the gradient of bf16 features is bf16: 8 bits of mantissa
    assert torch.allclose(x.grad.double(), want_grad, rtol=2e-2, atol=1e-2 * scale)


def test_gram_mse_forms_g_minus_a_in_one_product(monkeypatch):
    """The point of the fused loss: one bf16 matrix product forward (fp32_gram's CPU path takes two), one back."""
    if not _cpu_bf16_exact():
        pytest.skip("this CPU's bf16 matmul rounds before adding its input")
    calls = []
    for name in ("bmm", "baddbmm"):
        real = getattr(torch, name)
        monkeypatch.setattr(torch, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    f = torch.rand(1, 16, 12, 12, generator=torch.Generator().manual_seed(9)).bfloat16().requires_grad_(True)
    loss = P.gram_mse(f, torch.rand(1, 16, 16) / 10)
    assert calls == ["baddbmm"]
    loss.backward()
    assert calls == ["baddbmm", "bmm"]
    calls.clear()
    P.gram_mse(f.detach(), torch.rand(1, 16, 16) / 10, fused=False)
    assert len(calls) == 2  # the two-product Gram, for comparison


def test_gram_mse_falls_back_where_it_must(monkeypatch):
    """A target that needs a gradient, float32 features, or a CPU whose matmul rounds first: fp32_gram + mse."""
    gen = torch.Generator().manual_seed(11)
    f = torch.rand(1, 16, 12, 12, generator=gen).bfloat16()
    target = torch.rand(1, 16, 16, generator=gen) / 10
    want, _ = _mse_oracle(f, target, 16 * 144)
    t = target.clone().requires_grad_(True)
    loss = P.gram_mse(f, t)
    loss.backward()
    assert t.grad is not None and abs(float(loss) - float(want)) <= 1e-5 * float(want)
    assert abs(float(P.gram_mse(f.float(), target)) - float(want)) <= 1e-5 * float(want)
    monkeypatch.setattr(P, "_GramMse", None)  # taking the fused path now would raise
    monkeypatch.setattr(P, "_split_half_gram_is_exact", lambda device, dtype: False)
    assert abs(float(P.gram_mse(f, target)) - float(want)) <= 1e-5 * float(want)


def test_gram_mse_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        P.gram_mse(torch.rand(3, 4, 4), torch.rand(1, 3, 3))
    with pytest.raises(ValueError, match="differ in size"):
        P.gram_mse(torch.rand(1, 3, 4, 4), torch.rand(1, 4, 4))
    with pytest.raises(ValueError, match="normalize"):
        P.gram_mse(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 3), normalize="chw2")
