"""Source of notebooks/07_capstone.ipynb (built by notebooks/make_notebooks.py)."""

CELLS = [
    ("md", r"""
# 07 · Capstone: the whole transfer, by you

Every piece of Gatys et al.'s method has passed through your hands: feature maps of a frozen VGG-19
(notebook 01), Gram matrices and the style loss (02), the weighted total objective (03), the closure, the
L-BFGS loop, the starting image and the clamp (04). Here you put them together into one function - the
exercise every well-known tutorial ends with - and the check runs it side by side with `stlib.gatys`, the
library's reference, on a tiny image. When the two differ, it names the **first** thing that does: the
returned image, the objective at the start (with the usual causes), the number of objective evaluations
per step, the first step, the clamp, a later step.

You will write `my_gatys`.
"""),
    ("code", r"""
import torch

from stlib import course, plots

vgg = course.load_model()
SIZE = course.image_size()
STEPS = course.pick(60, fast=3)
photo = stlib.load_image("astronaut", SIZE)
painting = stlib.load_image("the_scream", SIZE)
weights = stlib.preset_for(vgg.weights_source)        # a Preset: weights, layers and their per-layer weights
print(f"preset {weights.name!r}: content {dict(weights.content_layers)} x {weights.content_weight:g}, style "
      f"{dict(weights.style_layers)} x {weights.style_weight:g}, TV x {weights.tv_weight:g}")
"""),
    ("md", r"""
## The network stays frozen

Only the image is optimised. `stlib.load_vgg19` returns the network with `requires_grad=False` on every
weight (and in evaluation mode), so `backward()` computes gradients for the pixels alone and never
wastes time or memory on the 20 million weights.
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
print("any VGG weight that records gradients:", any(p.requires_grad for p in vgg.parameters()))
print("evaluation mode:", not vgg.training)
"""),
    ("md", r"""
## Exercise · `my_gatys`

Write `my_gatys(model, content, style, steps, weights)`: `content` and `style` are loaded images
(1, 3, H, W) - not necessarily of the same size: a Gram matrix is C×C whatever the image's size, so the
portrait *Scream* can style the square astronaut - `weights` a preset like the one above (`weights.content_weight`,
`weights.style_weight`, `weights.tv_weight`, and the dicts `weights.content_layers` and
`weights.style_layers` mapping a layer name to its weight). Return `(image, losses)`: the final image
(detached, in [0, 1]) and a list with the objective's value at **every** closure call.

The five steps, each from an earlier notebook:

1. **targets** - the photo's features at the content layers and the painting's Gram matrices at the style
   layers, computed once, under `torch.no_grad()` (`stlib.extract_features`, `stlib.gram_matrix`);
2. **the image** - a copy of the photo that records gradients (`start_image`, notebook 04);
3. **the closure** - zero the gradient, features of the current image, the weighted objective
   (`stlib.content_loss`, `stlib.style_layer_loss`, `stlib.tv_loss`; `total_loss`, notebook 03),
   `backward()`, remember `loss.item()`, return the loss (`make_closure`, notebook 04);
4. **the loop** - `torch.optim.LBFGS([x], lr=1, max_iter=1, history_size=10)`, one `step(closure)` per step;
5. **the clamp** - after every step, keep the pixels in [0, 1] (in place, under `torch.no_grad()`).
"""),
    ("code", r'''
def my_gatys(model, content, style, steps, weights):
    """Gatys et al.'s transfer: returns (image (1, 3, H, W) in [0, 1], the objective at every closure call)."""
    raise NotImplementedError  # your code here
'''),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
passed = stlib.checks.check_capstone(my_gatys, vgg)
"""),
    ("solution", "capstone"),
    ("md", r"""
## Your transfer on a real picture

With a passing `my_gatys`, this runs your function at the notebook's size; until then it runs
`stlib.gatys`, which the check compared yours with.
"""),
    ("code", r"""
if passed:
    image, losses = my_gatys(vgg, photo, painting, STEPS, weights)
    label = f"my_gatys, {STEPS} steps"
else:
    reference = stlib.gatys(vgg, photo, painting, steps=STEPS)
    image, losses, label = reference.image, reference.losses, f"stlib.gatys, {STEPS} steps (until yours passes)"
print(f"objective {losses[0]:.4g} (the photo) -> {min(losses):.4g} (best)")
assert min(losses) < losses[0], "the optimisation should lower the objective"
plots.show_images({"photo": photo, "painting": painting, label: image}, size=3)
"""),
    ("md", r"""
That is the method of the paper, complete. `stlib.stylize` runs the same objective with the same optimiser
and adds what a tool needs: reduced precision and CUDA graphs for speed, coarse-to-fine for large
images, colour preservation, blends and regions (notebook 06), progress bars, and a safe stop on Ctrl-C
or a diverging loss.

**Where next?** Try `my_gatys` with `init` from noise, with average pooling
(`course.load_model(pooling="avg")`), or with your own weights and layers - and compare with the figures
of the paper.

**Next:** notebook 08 shows how phone apps answer in milliseconds: a network trained once, with these same
losses, paints any photo in one forward pass.
"""),
]
