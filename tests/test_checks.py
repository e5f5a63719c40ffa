"""Exercise checks: a correct answer passes, every kind of wrong answer gets its own helpful message,
an unfinished stub is "not implemented yet", and no check ever raises."""

import pytest
import torch

import stlib
from stlib import checks
from stlib.layers import receptive_field


def _stub(*args):
    raise NotImplementedError


def _empty(*args):
    return None


def _verdict(check, fn, capsys):
    result = check(fn)
    printed = capsys.readouterr().out
    assert printed.split() == result.message.split()  # the message is printed (wrapped to 100 columns)
    assert bool(result) is (result.status == "passed")
    return result


@pytest.mark.parametrize("check", [checks.check_gram, checks.check_content_loss, checks.check_style_layer_loss,
                                   checks.check_tv_loss, checks.check_receptive_field, checks.check_gradient_step,
                                   checks.check_seeded_noise])
@pytest.mark.parametrize("unfinished", [_stub, _empty, None])
def test_unfinished_exercises_are_reported_kindly(check, unfinished, capsys):
    result = _verdict(check, unfinished, capsys)
    assert result.status == "todo"
    assert "not implemented yet" in result.message
    assert "Traceback" not in result.message


@pytest.mark.parametrize("check", [checks.check_gram, checks.check_tv_loss])
def test_a_crashing_function_becomes_a_sentence(check, capsys):
    def broken(x):
        return x.reshape(-1, 7, 3)  # a shape error inside the student's code

    result = _verdict(check, broken, capsys)
    assert result.status == "wrong"
    assert "raised RuntimeError" in result.message


def test_passing_a_call_instead_of_a_function(capsys):
    result = _verdict(checks.check_gram, torch.zeros(2, 2), capsys)
    assert result.status == "wrong" and "without calling it" in result.message


# ------------------------------------------------------------------------------------------------ gram
def _gram_loop(f):
    b, c, h, w = f.shape
    flat = f.reshape(b, c, h * w)
    return torch.stack([flat[i] @ flat[i].T for i in range(b)]) / (c * h * w)


def _gram_folded_channels(f):
    b, c, h, w = f.shape
    x = f.reshape(b * c, h * w)
    return x @ x.T / (c * h * w)


def _gram_folded_positions(f):
    b, c, h, w = f.shape
    x = f.transpose(0, 1).reshape(c, b * h * w)
    return x @ x.T / (c * h * w)


def _gram_positions(f):
    b, c, h, w = f.shape
    x = f.reshape(b, c, h * w)
    return x.transpose(1, 2) @ x / (c * h * w)


def _gram_scrambled(f):
    b, c, h, w = f.shape
    x = f.reshape(b, h * w, c)
    return x.transpose(1, 2) @ x / (c * h * w)


def _gram_numpy(f):
    b, c, h, w = f.shape
    x = f.detach().numpy().reshape(b, c, h * w)
    return torch.from_numpy(x @ x.transpose(0, 2, 1) / (c * h * w))


def _gram_inplace(f):
    b, c, h, w = f.shape
    f /= (c * h * w) ** 0.5  # in place on the input
    x = f.reshape(b, c, h * w)
    return x @ x.transpose(1, 2)


@pytest.mark.parametrize("fn", [stlib.gram_matrix, _gram_loop], ids=["stlib", "loop"])
def test_check_gram_accepts_correct_answers(fn, capsys):
    result = _verdict(checks.check_gram, fn, capsys)
    assert result.status == "passed" and result.message.startswith("✓")


@pytest.mark.parametrize("fn, phrase", [
    (lambda f: stlib.gram_matrix(f, normalize=False), "no normalisation"),
    (lambda f: stlib.gram_matrix(f, normalize="hw"), "you divided by H*W"),
    (lambda f: stlib.gram_matrix(f, normalize=False) / f.shape[1], "divided by C only"),
    (lambda f: stlib.gram_matrix(f) / f.shape[0], "batch size"),
    (lambda f: 3 * stlib.gram_matrix(f), "times stlib's"),
    (_gram_folded_channels, "batch was folded into the channels"),
    (_gram_folded_positions, "batch dimension is missing"),
    (lambda f: stlib.gram_matrix(f).squeeze(0) if f.shape[0] == 1 else stlib.gram_matrix(f), "squeezed away"),
    (_gram_positions, "positions with positions"),
    (_gram_scrambled, "scrambled"),
    (lambda f: stlib.gram_matrix(f).detach(), "carries no gradient"),
    (_gram_numpy, "carries no gradient"),
    (_gram_inplace, "requires grad"),
    (lambda f: stlib.gram_matrix(f) + 0.01, "values differ"),
    (lambda f: stlib.gram_matrix(f).tolist(), "torch.Tensor"),
], ids=["raw", "hw", "c", "batch", "factor", "fold-channels", "fold-positions", "squeeze", "positions",
        "scrambled", "detach", "numpy", "inplace", "offset", "list"])
def test_check_gram_names_each_mistake(fn, phrase, capsys):
    result = _verdict(checks.check_gram, fn, capsys)
    assert result.status == "wrong"
    assert phrase in result.message
    assert "solution('gram')" in result.message


# ------------------------------------------------------------------------------------------------ content loss
def test_check_content_loss_accepts_correct_answers(capsys):
    assert _verdict(checks.check_content_loss, stlib.content_loss, capsys).ok
    assert _verdict(checks.check_content_loss, lambda f, t: ((f - t) ** 2).mean(), capsys).ok


@pytest.mark.parametrize("fn, phrase", [
    (lambda f, t: 0.5 * ((f - t) ** 2).sum(), "Gatys"),
    (lambda f, t: ((f - t) ** 2).sum(), "you summed"),
    (lambda f, t: (f - t).abs().mean(), "absolute differences"),
    (lambda f, t: ((f - t) ** 2).mean().sqrt(), "square root"),
    (lambda f, t: (f - t).mean() ** 2, "squared after averaging"),
    (lambda f, t: (f - t) ** 2, "one number"),
    (lambda f, t: 2 * ((f - t) ** 2).mean(), "times stlib's"),
    (lambda f, t: ((f - t) ** 2).mean().detach(), "carries no gradient"),
    (lambda f, t: ((f - t) ** 3).mean(), "mean over all elements"),
], ids=["gatys", "sum", "abs", "sqrt", "square-after", "no-reduce", "factor", "detach", "cube"])
def test_check_content_loss_names_each_mistake(fn, phrase, capsys):
    result = _verdict(checks.check_content_loss, fn, capsys)
    assert result.status == "wrong" and phrase in result.message


# ------------------------------------------------------------------------------------------------ style loss
def test_check_style_layer_loss_accepts_correct_answer(capsys):
    assert _verdict(checks.check_style_layer_loss, stlib.style_layer_loss, capsys).ok


@pytest.mark.parametrize("fn, phrase", [
    (lambda f, a: ((stlib.gram_matrix(f, normalize=False) - a) ** 2).mean(), "not normalised like the target"),
    (lambda f, a: ((stlib.gram_matrix(f) - a) ** 2).sum(), "you summed"),
    (lambda f, a: (stlib.gram_matrix(f) - a).abs().mean(), "absolute differences"),
    (lambda f, a: 0.25 * ((stlib.gram_matrix(f) - a) ** 2).mean(), "times stlib's"),
    (lambda f, a: ((f - a) ** 2).mean(), "already a Gram matrix"),
    (lambda f, a: (stlib.gram_matrix(f) - a) ** 2, "one number"),
], ids=["raw-gram", "sum", "abs", "factor", "features-vs-gram", "no-reduce"])
def test_check_style_layer_loss_names_each_mistake(fn, phrase, capsys):
    result = _verdict(checks.check_style_layer_loss, fn, capsys)
    assert result.status == "wrong" and phrase in result.message


# ------------------------------------------------------------------------------------------------ TV loss
def test_check_tv_loss_accepts_correct_answer(capsys):
    assert _verdict(checks.check_tv_loss, stlib.tv_loss, capsys).ok


def _dx(x):
    return x[..., :, 1:] - x[..., :, :-1]


def _dy(x):
    return x[..., 1:, :] - x[..., :-1, :]


@pytest.mark.parametrize("fn, phrase", [
    (lambda x: (_dx(x) ** 2).mean(), "only the left-right neighbours"),
    (lambda x: (_dy(x) ** 2).mean(), "only the up-down neighbours"),
    (lambda x: _dx(x).abs().mean() + _dy(x).abs().mean(), "absolute differences"),
    (lambda x: (_dx(x) ** 2).sum() + (_dy(x) ** 2).sum(), "you summed"),
    (lambda x: ((torch.roll(x, 1, -1) - x) ** 2).mean() + ((torch.roll(x, 1, -2) - x) ** 2).mean(), "torch.roll"),
    (lambda x: (_dx(x)[..., :-1, :] ** 2 + _dy(x)[..., :, :-1] ** 2).mean(), "cropped"),
    (lambda x: 0.5 * ((_dx(x) ** 2).mean() + (_dy(x) ** 2).mean()), "times stlib's"),
    (lambda x: (_dx(x) ** 2).mean(dim=(1, 2, 3)) + (_dy(x) ** 2).mean(dim=(1, 2, 3)), "one number"),
], ids=["x-only", "y-only", "l1", "sum", "roll", "crop", "factor", "per-image"])
def test_check_tv_loss_names_each_mistake(fn, phrase, capsys):
    result = _verdict(checks.check_tv_loss, fn, capsys)
    assert result.status == "wrong" and phrase in result.message


# ------------------------------------------------------------------------------------------------ receptive field
def test_check_receptive_field_accepts_correct_answer(capsys):
    result = _verdict(checks.check_receptive_field, receptive_field, capsys)
    assert result.ok and f"{receptive_field('relu4_2')} x" in result.message


def _rf_no_jump(layer):
    size = 1
    for name in stlib.VGG19_LAYERS[: stlib.layer_index(layer) + 1]:
        size += 2 if name.startswith("conv") else (1 if name.startswith("pool") else 0)
    return size


def _rf_relu_counts(layer):
    return receptive_field(layer) + (2 if layer.startswith("relu") else 0)


@pytest.mark.parametrize("fn, phrase", [
    (_rf_no_jump, "the 'jump' doubles"),
    (_rf_relu_counts, "a ReLU works pixel by pixel"),
    (lambda layer: receptive_field(layer) - 1, "each 3x3 convolution adds"),
    (lambda layer: str(receptive_field(layer)), "return a number"),
], ids=["no-jump", "relu", "off-by-one", "string"])
def test_check_receptive_field_names_each_mistake(fn, phrase, capsys):
    result = _verdict(checks.check_receptive_field, fn, capsys)
    assert result.status == "wrong" and phrase in result.message


# ------------------------------------------------------------------------------------------------ gradient step
def _step_reference(image, loss_fn, lr):
    x = image.detach().clone().requires_grad_(True)
    loss_fn(x).backward()
    return (x - lr * x.grad).detach()


def _step_with(update):
    def step(image, loss_fn, lr):
        x = image.detach().clone().requires_grad_(True)
        loss_fn(x).backward()
        return update(x.detach(), x.grad, lr)
    return step


def _step_in_place(image, loss_fn, lr):
    x = image.requires_grad_(True)
    loss_fn(x).backward()
    with torch.no_grad():
        image -= lr * x.grad
    return image.detach().clone()


def _step_attached(image, loss_fn, lr):
    x = image.detach().clone().requires_grad_(True)
    loss = loss_fn(x)
    (grad,) = torch.autograd.grad(loss, x, create_graph=True)
    return x - lr * grad


def test_check_gradient_step_accepts_correct_answer(capsys):
    result = _verdict(checks.check_gradient_step, _step_reference, capsys)
    assert result.ok and "loss went down" in result.message


@pytest.mark.parametrize("fn, phrase", [
    (_step_with(lambda x, g, lr: x + lr * g), "you added the gradient"),
    (_step_with(lambda x, g, lr: x - g), "ignores the learning rate"),
    (_step_with(lambda x, g, lr: g), "returned the gradient"),
    (_step_with(lambda x, g, lr: x), "did not change"),
    (_step_with(lambda x, g, lr: x - lr * g.sign()), "sign of the gradient"),
    (_step_with(lambda x, g, lr: x - 2 * lr * g), "twice lr * grad"),
    (_step_with(lambda x, g, lr: x - 3 * lr * g), "differs from image - lr * grad"),
    (_step_with(lambda x, g, lr: (x - lr * g)[0]), "returned shape"),
    (_step_in_place, "in place"),
    (_step_attached, "still attached"),
], ids=["ascent", "no-lr", "grad", "unchanged", "sign", "double", "other", "shape", "in-place", "attached"])
def test_check_gradient_step_names_each_mistake(fn, phrase, capsys):
    result = _verdict(checks.check_gradient_step, fn, capsys)
    assert result.status == "wrong" and phrase in result.message


# ------------------------------------------------------------------------------------------------ seeded noise
def test_check_seeded_noise_accepts_correct_answer_and_keeps_global_rng(capsys):
    state = torch.random.get_rng_state()
    result = _verdict(checks.check_seeded_noise,
                      lambda shape, seed: torch.rand(shape, generator=torch.Generator().manual_seed(seed)), capsys)
    assert result.ok
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("fn, phrase", [
    (lambda shape, seed: torch.rand(shape), "gave different noise"),
    (lambda shape, seed: torch.rand(shape, generator=torch.Generator().manual_seed(0)), "must be used"),
    (lambda shape, seed: (torch.manual_seed(seed), torch.rand(shape))[1], "global random generator"),
    (lambda shape, seed: torch.randn(shape, generator=torch.Generator().manual_seed(seed)), "[0, 1]"),
    (lambda shape, seed: torch.rand(3, 8, 6, generator=torch.Generator().manual_seed(seed)), "it returned"),
], ids=["unseeded", "seed-ignored", "global", "normal", "shape"])
def test_check_seeded_noise_names_each_mistake(fn, phrase, capsys):
    state = torch.random.get_rng_state()
    result = _verdict(checks.check_seeded_noise, fn, capsys)
    assert result.status == "wrong" and phrase in result.message
    assert torch.equal(torch.random.get_rng_state(), state)  # the check restores the notebook's generator


# ------------------------------------------------------------------------------------------------ layer weights
LOSSES = {"relu1_1": 1e-4, "relu2_1": 1e-5, "relu3_1": 1e-6, "relu4_1": 1e-8, "relu5_1": 1e-9}


def test_check_layer_weights_balanced(capsys):
    result = checks.check_layer_weights({n: 1 / v for n, v in LOSSES.items()}, LOSSES)
    capsys.readouterr()
    assert result.ok and "20%" in result.message


@pytest.mark.parametrize("weights, phrase", [
    (None, "not implemented yet"),
    ({n: 1.0 for n in LOSSES}, "equal weights"),
    ({n: 0.2 for n in LOSSES}, "as Gatys et al.'s 1/5"),
    ({n: 3 * v for n, v in LOSSES.items()}, "weighted each layer by its own loss"),
    ({n: (1 / v if n != "relu5_1" else 10 / v) for n, v in LOSSES.items()}, "relu5_1 contributes 10.0x more"),
    ({"relu1_1": 1.0}, "missing or zero: relu2_1"),
    ({**{n: 1.0 for n in LOSSES}, "relu9_9": 1.0}, "not a VGG-19 layer"),
    ({**{n: 1 / v for n, v in LOSSES.items()}, "relu4_2": 1.0}, "not one of the five style layers"),
    ({**{n: 1.0 for n in LOSSES}, "relu2_1": -1.0}, "finite numbers >= 0"),
    ({**{n: 1.0 for n in LOSSES}, "relu2_1": "1"}, "finite numbers >= 0"),
    ([1, 2, 3], "expected a dict"),
], ids=["none", "equal", "gatys-fifth", "proportional", "unbalanced", "missing", "bad-name", "content-layer",
        "negative", "string", "list"])
def test_check_layer_weights_mistakes(weights, phrase, capsys):
    result = checks.check_layer_weights(weights, LOSSES)
    capsys.readouterr()
    assert not result.ok and phrase in result.message


# ------------------------------------------------------------------------------------------------ solutions
CHECK_FOR = {
    "gram": ("gram_matrix", checks.check_gram),
    "content_loss": ("content_loss", checks.check_content_loss),
    "style_layer_loss": ("style_layer_loss", checks.check_style_layer_loss),
    "tv_loss": ("tv_loss", checks.check_tv_loss),
    "receptive_field": ("receptive_field", checks.check_receptive_field),
    "gradient_step": ("gradient_step", checks.check_gradient_step),
    "seeded_noise": ("seeded_noise", checks.check_seeded_noise),
}


@pytest.mark.parametrize("key", sorted(CHECK_FOR))
def test_every_published_solution_passes_its_check(key, capsys):
    namespace = {"stlib": stlib, "torch": torch}
    exec(checks.SOLUTIONS[key], namespace)  # the exact code shown to students
    name, check = CHECK_FOR[key]
    assert _verdict(check, namespace[name], capsys).ok


def test_layer_weights_accept_tensors_and_numpy_numbers(capsys):
    np = pytest.importorskip("numpy")
    weights = {n: (torch.tensor(1 / v) if i % 2 else np.float32(1 / v)) for i, (n, v) in enumerate(LOSSES.items())}
    assert checks.check_layer_weights(weights, LOSSES).ok, capsys.readouterr().out


@pytest.mark.parametrize("size", [64, 192])  # notebook 03 in fast mode and at students' size
def test_doing_nothing_does_not_pass_the_layer_weights_exercise(size, vgg, capsys):
    """Equal weights (or Gatys's 1/5) must fail with the offline weights' losses, as notebook 03 measures them."""
    photo, painting = stlib.load_image("chelsea", size), stlib.load_image("swirls", size)
    with torch.no_grad():  # E_l at the photo against the painting's Gram matrices, as notebook 03's per_layer
        feats = stlib.extract_features(vgg, photo, stlib.STYLE_LAYERS)
        targets = {n: stlib.gram_matrix(f) for n, f in stlib.extract_features(vgg, painting, stlib.STYLE_LAYERS).items()}
    per_layer = {n: float(stlib.style_layer_loss(feats[n], targets[n])) for n in stlib.STYLE_LAYERS}
    for weights in ({n: 1.0 for n in per_layer}, {n: 0.2 for n in per_layer}):
        result = checks.check_layer_weights(weights, per_layer)
        assert result.status == "wrong" and "equal weights" in result.message
    namespace = {"stlib": stlib, "per_layer": per_layer}
    exec(checks.SOLUTIONS["layer_weights"], namespace)
    assert checks.check_layer_weights(namespace["my_layer_weights"], per_layer).ok


def test_layer_weights_solution_passes(capsys):
    namespace = {"stlib": stlib, "per_layer": LOSSES}
    exec(checks.SOLUTIONS["layer_weights"], namespace)
    assert checks.check_layer_weights(namespace["my_layer_weights"], LOSSES).ok


def test_solution_prints_code_and_rejects_unknown_names(capsys):
    checks.solution("gram")
    assert "def gram_matrix(features):" in capsys.readouterr().out
    with pytest.raises(KeyError, match="the exercises are"):
        checks.solution("nope")


def test_result_is_not_displayed_twice_in_jupyter(capsys):
    result = checks.check_gram(stlib.gram_matrix)
    capsys.readouterr()
    assert result._ipython_display_() is None
    assert capsys.readouterr().out == ""


# ------------------------------------------------------------------------------------------------ sign, squares, axes
def _tv_channel_axis(image):  # "vertical" neighbours taken along dim 1, the channels
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[:, 1:] - image[:, :-1]
    return (dx ** 2).mean() + (dy ** 2).mean()


def _centred_gram(f):
    b, c, h, w = f.shape
    flat = (f - f.mean(dim=(2, 3), keepdim=True)).reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def _torch_cov_gram(f):
    b, c, h, w = f.shape
    return torch.stack([torch.cov(x) for x in f.reshape(b, c, h * w)])


def _masked_gram_without_c(features, mask):
    b, c, h, w = features.shape
    masked = (features * mask).reshape(b, c, h * w)
    return masked @ masked.transpose(1, 2) / mask.pow(2).sum()


@pytest.mark.parametrize("check, fn, phrase", [
    (checks.check_content_loss, lambda f, t: -((f - t) ** 2).mean(), "the wrong sign"),
    (checks.check_style_layer_loss, lambda f, a: -((stlib.gram_matrix(f) - a) ** 2).mean(), "the wrong sign"),
    (checks.check_tv_loss, lambda x: -stlib.tv_loss(x), "the wrong sign"),
    (checks.check_gram, lambda f: -stlib.gram_matrix(f), "the wrong sign"),
    (checks.check_content_loss, lambda f, t: (f - t).mean(), "without squaring"),
    (checks.check_content_loss, lambda f, t: (t - f).mean(), "without squaring"),
    (checks.check_content_loss, lambda f, t: f.pow(2).mean() - t.pow(2).mean(), "subtracted the squares"),
    (checks.check_content_loss, lambda f, t: ((f - t) ** 2).sum() / f[0].numel(), "one image"),
    (checks.check_style_layer_loss, lambda f, a: (stlib.gram_matrix(f) - a).mean(), "without squaring"),
    (checks.check_tv_loss, lambda x: (x[..., :, 1:] - x[..., :, :-1]).mean() + (x[..., 1:, :] - x[..., :-1, :]).mean(),
     "without squaring"),
    (checks.check_tv_loss, _tv_channel_axis, "channel (or batch) axis"),
    (checks.check_tv_loss, lambda x: ((x[..., :, 1:] - x[..., :, :-1]) ** 2).sum() / x.numel()
     + ((x[..., 1:, :] - x[..., :-1, :]) ** 2).sum() / x.numel(), "its own pairs"),
    (checks.check_gram, _centred_gram, "covariance matrix"),
    (checks.check_gram, _torch_cov_gram, "torch.cov"),
    (checks.check_masked_gram, _masked_gram_without_c, "but not by C"),
    (checks.check_gram, lambda f: stlib.gram_matrix(f[:1]), "only the first image"),
    (checks.check_style_layer_loss, lambda f, a: ((stlib.gram_matrix(f, normalize=False) / (f.shape[2] * f.shape[3])
                                                    - a) ** 2).mean(), "divided by H*W, the target by C*H*W"),
    (checks.check_style_layer_loss, lambda f, a: ((stlib.gram_matrix(f) - a) ** 2).sum()
     / (4 * f.shape[1] ** 2 * (f.shape[2] * f.shape[3]) ** 2), "1 / (4 N^2 M^2)"),
    (checks.check_style_layer_loss, lambda f, a: (stlib.gram_matrix(f) - a).norm(), "square root"),
    (checks.check_tv_loss, lambda x: stlib.tv_loss(x).sqrt(), "square root"),
], ids=["content-negated", "style-negated", "tv-negated", "gram-negated", "content-unsquared", "content-unsquared-flipped",
        "content-difference-of-squares", "content-per-image", "style-unsquared", "tv-unsquared", "tv-channel-axis",
        "tv-over-numel", "gram-centred", "gram-torch-cov", "masked-gram-no-C", "gram-first-image", "style-gram-by-HW",
        "style-paper-factor", "style-norm", "tv-sqrt"])
def test_each_mistake_gets_its_own_sentence(check, fn, phrase, capsys):
    result = _verdict(check, fn, capsys)
    assert result.status == "wrong" and phrase in " ".join(result.message.split()), result.message
    assert "values differ" not in result.message and "times stlib's" not in result.message


# ------------------------------------------------------------------------------------------------ the package
def test_the_checks_package_keeps_its_walls():
    """stlib/checks/: no private name imported across modules, no module-level hooks, SOLUTIONS gathered once."""
    import ast
    import importlib
    from pathlib import Path

    folder = Path(checks.__file__).parent
    gathered = {}
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports private names {private} from {node.module}"
        top = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert "__getattr__" not in top, f"{path.name} has a module __getattr__ hook"
        for node in tree.body:  # nothing at module level changes a dict it imported (e.g. SOLUTIONS.update)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                func = node.value.func
                assert not (isinstance(func, ast.Attribute) and func.attr in ("update", "setdefault")), path.name
        if path.stem not in ("__init__", "framework"):
            module = importlib.import_module(f"stlib.checks.{path.stem}")
            assert not set(module.SOLUTIONS) & set(gathered), f"{path.name} repeats a solution key"
            gathered.update(module.SOLUTIONS)
    assert gathered == checks.SOLUTIONS
