"""Source of notebooks/04_optimisation.ipynb (built by notebooks/make_notebooks.py)."""

CELLS = [
    ("md", r"""
# 04 · Optimisation: gradient descent on the pixels

There is no network to train in style transfer: VGG-19 stays frozen. What is optimised is the **image**.
Every pixel is a parameter; backpropagation gives the gradient of the loss with respect to each of them;
an optimiser moves the pixels downhill. This notebook does that by hand first, then compares the two
optimisers people use (Adam and L-BFGS), the two usual starting points, and shows how to make a run
exactly reproducible.

You will write one gradient-descent step, the closure L-BFGS needs, a reproducible noise generator and
the choice of the starting image.
"""),
    ("code", r"""
import torch

from stlib import course, plots

vgg = course.load_model()
SIZE = course.image_size()
STEPS = course.pick(100, fast=6)  # L-BFGS without a line search overshoots at step 3, recovers by 5
photo = stlib.load_image("chelsea", SIZE)
painting = stlib.load_image("swirls", SIZE)
preset = stlib.preset_for(vgg.weights_source)
c_layers, s_layers = preset.content_layers, preset.style_layers
with torch.no_grad():  # what the image should match: the photo's features, the painting's Gram matrices
    content_targets = stlib.extract_features(vgg, photo, c_layers)
    style_targets = {n: stlib.gram_matrix(f) for n, f in stlib.extract_features(vgg, painting, s_layers).items()}


def loss_fn(image):
    # The full objective of notebook 03 for an image (1, 3, H, W), as one scalar tensor.
    feats = stlib.extract_features(vgg, image, [*c_layers, *s_layers])
    c_loss = sum(a * stlib.content_loss(feats[n], content_targets[n]) for n, a in c_layers.items())
    s_loss = sum(w * stlib.style_layer_loss(feats[n], style_targets[n]) for n, w in s_layers.items())
    return preset.content_weight * c_loss + preset.style_weight * s_loss + preset.tv_weight * stlib.tv_loss(image)
"""),
    ("md", r"""
## The gradient of the loss with respect to the image

Mark the image as something to differentiate (`requires_grad_(True)`), compute the loss, call
`backward()`: `x.grad` now has the image's shape, one number per pixel and colour, saying how the loss
changes when that value grows. Shown as a picture (its size per pixel), it tells where the optimiser is
going to repaint first.
"""),
    ("code", r"""
x = photo.clone().requires_grad_(True)
loss = loss_fn(x)
loss.backward()
print(f"loss {loss.item():.4g}; gradient shape {tuple(x.grad.shape)}")
magnitude = x.grad.abs().sum(dim=1, keepdim=True)
plots.show_images({"photo": photo, "|d loss / d pixel| (brightest 1% saturated)":
                   (magnitude / magnitude.quantile(0.99)).clamp(0, 1)}, size=3)
"""),
    ("md", r"""
### Exercise 1 · One gradient-descent step

Write `gradient_step(image, loss_fn, lr)` that returns the image after one step of plain gradient descent,
$x \leftarrow x - \text{lr}\cdot\nabla_x \mathcal{L}$. Work on a fresh copy that records gradients
(`image.detach().clone().requires_grad_(True)`), leave `image` itself unchanged, and return a tensor
without gradient history (`.detach()`).
"""),
    ("code", r'''
def gradient_step(image, loss_fn, lr):
    """One step of gradient descent on the pixels: image - lr * d loss / d image."""
    raise NotImplementedError  # your code here
'''),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
stlib.checks.check_gradient_step(gradient_step)
"""),
    ("solution", "gradient_step"),
    ("md", r"""
## Adam, written out

Plain gradient descent needs a learning rate that suits every pixel at once. **Adam** adapts it per pixel:
it keeps running averages of the gradient ($m$) and of its square ($v$) and steps by $m / \sqrt{v}$ - a
move of about `lr` for every pixel whose gradient points consistently one way. Here are a few steps by
hand, checked against `torch.optim.Adam`. Pixels are clamped to [0, 1] after every step, as `stylize`
does. (The losses agree; the pixels agree only to rounding, because torch orders the arithmetic
differently and a difference of 1e-8 in a pixel can tip a max-pooling or ReLU decision one way or the
other.)
"""),
    ("code", r"""
def adam_by_hand(image, steps, lr=0.02, beta1=0.9, beta2=0.999, eps=1e-8):
    x = image.detach().clone().requires_grad_(True)
    m, v, losses = torch.zeros_like(x), torch.zeros_like(x), []
    for t in range(1, steps + 1):
        loss = loss_fn(x)
        (grad,) = torch.autograd.grad(loss, x)
        m = beta1 * m + (1 - beta1) * grad                 # running mean of the gradient
        v = beta2 * v + (1 - beta2) * grad**2              # running mean of its square
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)   # undo the bias of starting at zero
        with torch.no_grad():
            x -= lr * m_hat / (v_hat.sqrt() + eps)
            x.clamp_(0, 1)
        losses.append(loss.item())
    return x.detach(), losses


def adam_by_torch(image, steps, lr=0.02):
    x = image.detach().clone().requires_grad_(True)
    optimiser, losses = torch.optim.Adam([x], lr=lr), []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = loss_fn(x)
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            x.clamp_(0, 1)
        losses.append(loss.item())
    return x.detach(), losses


mine, my_losses = adam_by_hand(photo, steps=5)
theirs, their_losses = adam_by_torch(photo, steps=5)
print("losses by hand: ", " ".join(f"{v:.4g}" for v in my_losses))
print("torch.optim.Adam:", " ".join(f"{v:.4g}" for v in their_losses))
assert torch.allclose(torch.tensor(my_losses), torch.tensor(their_losses), rtol=1e-3), "should match torch's Adam"
"""),
    ("md", r"""
## The whole algorithm in one function: `stlib.gatys`

Everything so far fits in one short function: the targets, `loss_fn`'s objective, an optimiser stepping on
the pixels, the clamp. Here it is, exactly as it is in the library (`inspect.getsource` reads the file).
It uses `torch.optim.LBFGS`, the paper's optimiser (next section), whose `step` takes a **closure**: a
function that recomputes the loss and its gradient for the current image, because L-BFGS decides itself
when it needs them. With `max_iter=1` it asks once per step, so the clamp to [0, 1] runs after every step.
"""),
    ("code", r"""
import inspect

from IPython.display import Code

Code(inspect.getsource(stlib.gatys), language="python")
"""),
    ("md", r"""
It takes loaded images and runs in plain float32, nothing else. `stlib.stylize`, which the rest of the
course uses, is the same algorithm made fast and robust (reduced precision, coarse-to-fine, a progress
bar, Ctrl-C and NaN safety); a test checks that in float32 the two take the same steps.
"""),
    ("code", r"""
reference = stlib.gatys(vgg, photo, painting, steps=STEPS)
print(f"loss {reference.losses[0]:.4g} (the photo) -> {min(reference.losses):.4g} (best of {STEPS} steps)")
assert min(reference.losses) < 0.8 * reference.losses[0], "gatys should lower the loss"
plots.show_images({"photo": photo, "painting": painting, f"stlib.gatys, {STEPS} steps": reference.image}, size=3)
"""),
    ("md", r"""
### Exercise 2 · Write the closure

Why a closure? Within one `step` L-BFGS may need the loss and gradient several times, at points it chooses
(for a line search, or for several inner iterations when `max_iter > 1`), so it must be able to ask for
them. Write `make_closure(x, optimizer, loss_fn)` that returns such a function: clear the old gradient,
compute the loss at the current `x`, backpropagate, return the loss (`x` is the image being
optimised, a leaf tensor with `requires_grad=True`; `loss_fn(x)` returns the loss). The check runs your
closure inside `torch.optim.LBFGS` on a small problem.
"""),
    ("code", r'''
def make_closure(x, optimizer, loss_fn):
    """A function for optimizer.step(...): zero the gradient, loss at the current x, backward, return the loss."""
    raise NotImplementedError  # your code here
'''),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
stlib.checks.check_closure(make_closure)
"""),
    ("solution", "closure"),
    ("md", r"""
## Adam vs L-BFGS

`stlib.stylize` runs either optimiser. **L-BFGS** (the paper's choice) builds a picture of the loss's
curvature from the last gradients and takes much better-aimed steps; each step costs about one Adam step
here (one forward and backward pass). Compare the loss against steps and against wall-clock time. (A
first tiny call pays one-off start-up costs, so they do not distort the timing.) The progress bars show
each run as it goes; `progress=False` hides them.
"""),
    ("code", r"""
stlib.stylize(photo, painting, size=SIZE, steps=2, model=vgg, precision="auto", progress=False)  # warm-up
runs = {"L-BFGS": stlib.stylize(photo, painting, optimizer="lbfgs", size=SIZE, steps=STEPS, model=vgg,
                                precision="auto"),
        "Adam (lr 0.02)": stlib.stylize(photo, painting, optimizer="adam", size=SIZE, steps=STEPS, model=vgg,
                                        precision="auto")}
plots.show_images(runs, size=3)
"""),
    ("code", r"""
plots.plot_losses(runs, x="step")
"""),
    ("code", r"""
plots.plot_losses(runs, x="time")
"""),
    ("md", r"""
L-BFGS reaches in a few dozen steps a loss that Adam needs many more for, which is why Gatys et al. and
Johnson's *neural-style* use it (most tutorials - TensorFlow's, Udacity's, d2l's - use Adam, which is
simpler to set up and good enough for a few hundred steps). One safeguard makes it dependable: the L-BFGS of PyTorch's tutorial takes
the full step its curvature model suggests and keeps whatever loss it lands on, so a wrong model (early
on, or with bf16 gradients) sends the loss up, sometimes for dozens of steps. `stylize`'s L-BFGS rejects
a step that raised the loss, goes back towards the best image and tries a shorter step - still one
forward and backward pass per step. The history marks rejected steps (`accepted`; on the curves they are
hollow circles off the line: the image went back, so the picture never was that bad) and the returned image
(`best`, the dot on the curves); `optimizer="lbfgs-plain"` runs the unchecked version for comparison. Adam's strengths are elsewhere: it is robust to noisy or changing
objectives, and each step moves a pixel by about `lr` at most. Notice too that Adam's picture keeps more
of the photo only because it has not gone as far: a less converged run is not a worse picture, just a
different point on the way from the photo to the minimum.

## Where to start: the photo or white noise

The paper starts from white noise; most implementations start from the photo, which already has the
right content, so the optimiser only has to add style. Both end in (different) local minima:
"""),
    ("code", r"""
from_noise = stlib.stylize(photo, painting, init="noise", size=SIZE, steps=STEPS, model=vgg, precision="auto")
plots.show_images({"init='content' (default)": runs["L-BFGS"], "init='noise'": from_noise}, size=3)
"""),
    ("code", r"""
plots.plot_losses({"from the photo": runs["L-BFGS"], "from noise": from_noise})
"""),
    ("md", r"""
Both runs end at about the same loss, at very different pictures: the objective has many minima, and the
starting point decides which one the optimiser settles in. From the photo it finds one that still looks
like the photo. From noise the layout has to emerge from scratch; in the paper's figures (ImageNet
weights) it does, with a different arrangement of strokes for every seed. With the offline random weights
the content term is too weak for that, and the noise start ends as pure texture.

## Watching a run

`stylize` calls `callback(info)` every `every` steps with the current image; here it keeps a few
snapshots to show how the photo turns into a painting.
"""),
    ("code", r"""
snapshots = {"step 0": photo}
SHOW_AT = {1, 3, 10, 30, STEPS}


def keep_snapshot(info):
    if info.step in SHOW_AT:
        snapshots[f"step {info.step}"] = info.image


stlib.stylize(photo, painting, size=SIZE, steps=STEPS, model=vgg, precision="auto", callback=keep_snapshot, every=1)
plots.show_images(snapshots, ncols=6, size=2.2)
"""),
    ("md", r"""
## Reproducibility

Everything random in `stylize` - the noise it starts from - comes from its `seed`. The same seed gives the
**identical** tensor, bit for bit, on the same machine and settings; another seed gives another picture.
(On a GPU some cuDNN kernels are not deterministic; `torch.use_deterministic_algorithms(True)` forbids
them.)
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
SEED_STEPS = course.pick(10, fast=2)
a = stlib.stylize(photo, painting, init="noise", seed=1, size=SIZE, steps=SEED_STEPS, model=vgg, progress=False)
b = stlib.stylize(photo, painting, init="noise", seed=1, size=SIZE, steps=SEED_STEPS, model=vgg, progress=False)
c = stlib.stylize(photo, painting, init="noise", seed=2, size=SIZE, steps=SEED_STEPS, model=vgg, progress=False)
print("seed 1 twice -> identical:", torch.equal(a.image, b.image))
print("seed 1 vs 2  -> identical:", torch.equal(a.image, c.image))
"""),
    ("md", r"""
### Exercise 3 · Reproducible noise

Write `seeded_noise(shape, seed)` that returns uniform noise in [0, 1) of the given shape, **the same for
the same seed**, without touching PyTorch's global random generator (calling `torch.manual_seed` would
silently change every random number drawn later in the notebook). Hint: `torch.Generator`.
"""),
    ("code", r'''
def seeded_noise(shape, seed):
    """Uniform [0, 1) noise of `shape`, identical for equal seeds; the global generator is left alone."""
    raise NotImplementedError  # your code here
'''),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
stlib.checks.check_seeded_noise(seeded_noise)
"""),
    ("solution", "seeded_noise"),
    ("md", r"""
### Exercise 4 · The starting image

`stylize(init=...)` starts from the photo or from noise. Write `start_image(photo, init, seed)`: for
`init="content"` a **copy** of the photo (the optimiser changes its image in place - what would happen to
`photo` if you returned it itself?), for `init="noise"` uniform noise of the photo's shape drawn as in
exercise 3, and a `ValueError` naming the choices for anything else.
"""),
    ("code", r'''
def start_image(photo, init, seed):
    """Where the optimisation starts: a copy of the photo ("content") or seeded noise of its shape ("noise")."""
    raise NotImplementedError  # your code here
'''),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
stlib.checks.check_start_image(start_image)
"""),
    ("solution", "start_image"),
    ("md", r"""
**Next:** notebook 05 turns the weights into sliders that steer a running optimisation; notebook 06 goes
beyond the paper.
"""),
]
