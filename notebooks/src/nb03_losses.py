"""Source of notebooks/03_losses.ipynb (built by notebooks/make_notebooks.py)."""

CELLS = [
    ("md", r"""
# 03 · Losses and weights: one objective, many conventions

Style transfer minimises one number over the pixels of the image $x$ being painted:

$$\mathcal{L}(x) = \alpha\,\mathcal{L}_\text{content}(x, p) + \beta \sum_l w_l\, E_l(x, a) + \gamma\,\mathrm{TV}(x)$$

the content loss against the photo $p$ (notebook 01), the style losses against the painting $a$ at
several layers with weights $w_l$ (notebook 02), and a total-variation term that keeps neighbouring
pixels alike. This notebook is about the numbers in front: what they do, how to choose them, and why
papers and tutorials quote values that differ by factors of a million.

You will write the TV loss and choose per-layer style weights.
"""),
    ("code", r"""
import torch

from stlib import course, plots

vgg = course.load_model()
SIZE = course.image_size()
STEPS = course.pick(60, fast=3)
photo = stlib.load_image("chelsea", SIZE)
painting = stlib.load_image("swirls", SIZE)
preset = stlib.preset_for(vgg.weights_source)     # stlib's default weights for these VGG weights
print(f"preset {preset.name!r}: content weight {preset.content_weight:g}, style weight {preset.style_weight:g}, "
      f"TV weight {preset.tv_weight:g}\n  per-layer style weights {preset.style_layers}\n  source: {preset.source}")
"""),
    ("md", r"""
## The three terms at the start of a run

`compute_targets` computes what the image should match (the photo's `relu4_2` features, the
painting's Gram matrices); `objective` evaluates every term for a candidate image - here the photo
itself, where `stylize` starts by default. Its content loss is zero; all the work is in the style term.
"""),
    ("code", r"""
from stlib.engine.objective import compute_targets, objective   # the terms exactly as stylize computes them

targets = compute_targets(vgg, photo, [painting], preset.content_layers, preset.style_layers, blend=[1.0])
with torch.no_grad():
    terms = objective(vgg, photo, targets, preset.content_layers, preset.style_layers,
                      preset.content_weight, preset.style_weight, preset.tv_weight)
for key in ("content", "style", "tv", "total"):
    print(f"{key:>8}: {float(terms[key]):.4g}")
"""),
    ("md", r"""
## Total variation

Gradient descent on pixels happily leaves high-frequency speckle that no VGG layer objects to. The TV term
penalises differences between neighbouring pixels: with $d_x$ the differences between horizontal
neighbours and $d_y$ between vertical ones,

$$\mathrm{TV}(x) = \operatorname{mean}(d_x^2) + \operatorname{mean}(d_y^2).$$

### Exercise 1 · Write `tv_loss`

Input: images (B, 3, H, W). Use slicing: `image[..., :, 1:] - image[..., :, :-1]` are the horizontal
differences (shape (B, 3, H, W-1)).
"""),
    ("code", r'''
def tv_loss(image):
    """Mean squared difference between neighbouring pixels of (B, 3, H, W), horizontally plus vertically."""
    raise NotImplementedError  # your code here
'''),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
stlib.checks.check_tv_loss(tv_loss)
"""),
    ("solution", "tv_loss"),
    ("md", r"""
What the number means: a smooth photo has a small TV, noise a large one.
"""),
    ("code", r"""
noise = torch.rand(photo.shape, generator=torch.Generator().manual_seed(0))
for label, image in {"photo": photo, "photo + 10% noise": (photo + 0.1 * (noise - 0.5)).clamp(0, 1),
                     "white noise": noise}.items():
    print(f"{label:>18}: TV = {float(stlib.tv_loss(image)):.4f}")
"""),
    ("md", r"""
## Per-layer style weights

The style term adds up five layers. Their raw losses are not of the same size: they depend on how many
channels a layer has and how large its activations are - and on the network's weights. With equal
weights one or two layers dominate and the others are ignored. `per_layer` below holds the unweighted
loss $E_l$ of each style layer at the start of a run.
"""),
    ("code", r"""
with torch.no_grad():
    feats = stlib.extract_features(vgg, photo, stlib.STYLE_LAYERS)
per_layer = {name: float(stlib.style_layer_loss(feats[name], targets["style"][name])) for name in stlib.STYLE_LAYERS}


def shares(weights):
    # Percentage of the style loss that each layer contributes with these weights.
    total = sum(weights[n] * per_layer[n] for n in stlib.STYLE_LAYERS)
    return "  ".join(f"{n} {100 * weights[n] * per_layer[n] / total:5.1f}%" for n in stlib.STYLE_LAYERS)


print("unweighted E_l:      ", "  ".join(f"{n} {v:.2e}" for n, v in per_layer.items()))
print("equal weights:       ", shares({n: 1.0 for n in stlib.STYLE_LAYERS}))
print(f"preset {preset.name!r} weights:", shares(preset.style_layers))
"""),
    ("md", r"""
### Exercise 2 · Choose layer weights

Set `my_layer_weights` to a dict `{layer: weight}` over the five style layers such that, at the start of
the run, no layer contributes more than 10× the share of any other. (There are many answers; think about
what would make every share the same.) The check prints the shares your weights give.
"""),
    ("code", r"""
my_layer_weights = None   # your dict here, e.g. {"relu1_1": 1.0, "relu2_1": 1.0, ...}
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
stlib.checks.check_layer_weights(my_layer_weights, per_layer)
"""),
    ("solution", "layer_weights"),
    ("md", r"""
Compare three weightings on the same photo and painting. (Until you fill in `my_layer_weights`, the
third picture uses the preset.) Balanced weights let the coarse layers shape larger strokes; equal
weights usually leave only the fine grain of the dominant layer.
"""),
    ("code", r"""
weightings = {"equal weights": {n: 1.0 for n in stlib.STYLE_LAYERS}, f"preset {preset.name!r}": preset.style_layers,
              "your weights": my_layer_weights or preset.style_layers}
runs = {}
for label, weights in weightings.items():
    scale = preset.style_weight * sum(preset.style_layers.values()) / sum(weights.values())  # same total weight
    runs[label] = stlib.stylize(photo, painting, style_layers=weights, style_weight=scale, size=SIZE, steps=STEPS,
                                model=vgg, precision="auto")
plots.show_images(runs, size=3)
"""),
    ("md", r"""
## The α/β ratio

Only the *ratio* of the content and style weights matters for where the optimum lies (scaling the whole
loss by a constant moves no minimum). Small β/α: the photo barely changes. Large β/α: the painting's
texture takes over and the photo's content fades. A sweep over five ratios, each a factor 10 apart, up to
the preset. Here every run takes the same number of Adam steps from the photo (notebook 04): Adam moves
each pixel by at most about `lr` per step, so the pictures show how hard each setting pulls towards the
painting within the same budget.
"""),
    ("code", r"""
SWEEP_STEPS = course.pick(80, fast=3)
sweep = {}
for factor in (0.0001, 0.001, 0.01, 0.1, 1.0):
    beta = preset.style_weight * factor
    sweep[f"β/α = {beta / preset.content_weight:g}"] = stlib.stylize(
        photo, painting, style_weight=beta, optimizer="adam", lr=0.03, size=SIZE, steps=SWEEP_STEPS, model=vgg,
        precision="auto")
plots.show_images(sweep, ncols=5, size=2.6)
"""),
    ("md", r"""
## Conventions: why published weights differ by orders of magnitude

Every implementation writes the same objective with different constants inside the losses, so its
weights are only meaningful together with its conventions:

| | Gram matrix | style loss per layer | content loss | input pixels | published weights |
|---|---|---|---|---|---|
| Gatys et al. 2016 | raw sums $FF^\top$ | $\frac{1}{4N_l^2M_l^2}\sum(G-A)^2$, $w_l = \frac15$ | $\frac12\sum(F-P)^2$ | Caffe VGG, 0-255, mean subtracted | $\alpha/\beta = 10^{-3}$ … $10^{-4}$ |
| PyTorch tutorial (Jacq & Herring) | $FF^\top / (CHW)$ | mean squared error | mean squared error | 0-1, ImageNet mean/std | content 1, style $10^6$ |
| Johnson's *neural-style* (Lua) | $FF^\top / (CHW)$ | mean squared error | mean squared error | Caffe VGG, 0-255, mean subtracted | content 5, style 100 |
| **stlib** | $FF^\top/(CHW)$ by default (`gram_norm=`) | mean squared error | mean squared error | 0-1, ImageNet mean/std | the tutorial's 1 / $10^6$ |

($N_l = C$ channels, $M_l = H\cdot W$ positions of layer *l*.) Rather than trusting algebra, measure the
conversion factors on real feature maps: the painting (resized to the photo) as $x$, the photo as target.
"""),
    ("code", r"""
x_img = stlib.resize(painting, tuple(photo.shape[-2:]))   # "x", the image being painted: the photo's size
with torch.no_grad():
    fx = stlib.extract_features(vgg, x_img, ["relu4_2", *stlib.STYLE_LAYERS])
    fp = stlib.extract_features(vgg, photo, ["relu4_2"])

# Content: Gatys' 1/2 * sum of squares vs stlib's mean.
c_gatys = 0.5 * ((fx["relu4_2"] - fp["relu4_2"]) ** 2).sum()
c_stlib = stlib.content_loss(fx["relu4_2"], fp["relu4_2"])
n_content = fx["relu4_2"].numel()
print(f"content, Gatys / stlib = {float(c_gatys / c_stlib):.6g}   (N/2 = C*H*W/2 = {n_content / 2:.6g})")

# Style, per layer: Gatys' raw Gram with 1/(4 N^2 M^2), and Gram / HW, each vs stlib's Gram / CHW.
style_factor = {}
for name in stlib.STYLE_LAYERS:
    f, a = fx[name], feats[name]                    # painting vs photo features at this layer
    _, c, h, w = f.shape
    e_stlib = stlib.style_layer_loss(f, stlib.gram_matrix(a))
    g_raw, a_raw = stlib.gram_matrix(f, normalize=False), stlib.gram_matrix(a, normalize=False)
    e_gatys = ((g_raw - a_raw) ** 2).sum() / (4 * c**2 * (h * w) ** 2)
    e_hw = stlib.style_layer_loss(f, stlib.gram_matrix(a, normalize="hw"), normalize="hw")
    style_factor[name] = float(e_gatys / e_stlib)
    print(f"{name}: Gatys / stlib = {style_factor[name]:9.6g} (C^2/4 = {c * c / 4:g});  "
          f"Gram/HW / stlib = {float(e_hw / e_stlib):8.6g} (C^2 = {c * c})")
"""),
    ("md", r"""
The factors are exact: Gatys' style term is $C_l^2/4$ times stlib's - a different factor for each layer
(1 024 at `relu1_1`, 65 536 at `relu5_1`), so the paper's "equal" weights $w_l = \frac15$ really favour
the deep layers - and its content term is $N/2$ times stlib's, which grows with the image size.

The input range matters too. Caffe's VGG takes pixels in 0-255 (mean subtracted) where torchvision's takes
(x - mean) / std, roughly 58× smaller. A ReLU network scales (almost) linearly with its input, so content
losses grow by about 58² and style losses - squares of products - by about 58⁴. Feeding the *same* network
a 0-255-style input measures it:
"""),
    ("code", r"""
mean, std = vgg.mean, vgg.std                             # ImageNet statistics, (1, 3, 1, 1)


def caffe_range(image):
    # An input that the normalisation maps to 255 * (image - mean): the scale Caffe's VGG expects.
    return mean + 255 * std * (image - mean)


with torch.no_grad():
    fx255 = stlib.extract_features(vgg, caffe_range(x_img), ["relu4_2", "relu3_1"])
    fp255 = stlib.extract_features(vgg, caffe_range(photo), ["relu4_2", "relu3_1"])
content_scale = float(stlib.content_loss(fx255["relu4_2"], fp255["relu4_2"]) / c_stlib)
style_scale = float(stlib.style_layer_loss(fx255["relu3_1"], stlib.gram_matrix(fp255["relu3_1"]))
                    / stlib.style_layer_loss(fx["relu3_1"], stlib.gram_matrix(feats["relu3_1"])))
s = float((255 * std).mean())
print(f"0-255 input: content loss x {content_scale:.3g} (s^2 = {s**2:.3g}), style loss x {style_scale:.3g} (s^4 = {s**4:.3g})")
"""),
    ("md", r"""
Now convert each published setting into stlib's units: the style weight per layer that multiplies
`stlib.style_layer_loss` when the content weight multiplying `stlib.content_loss` is 1. (For Gatys the
answer depends on the image size through $N$; shown for this notebook's images.)
"""),
    ("code", r"""
equivalent = {
    "PyTorch tutorial (1 / 1e6)": {n: 1e6 / 1 for n in stlib.STYLE_LAYERS},
    "Johnson neural-style (5 / 100)": {n: 100 * style_scale / (5 * content_scale) for n in stlib.STYLE_LAYERS},
    "Gatys, alpha/beta = 1e-3": {n: 1e3 * (1 / 5) * style_factor[n] * style_scale / (n_content / 2 * content_scale)
                                 for n in stlib.STYLE_LAYERS},
    "Gatys, alpha/beta = 1e-4": {n: 1e4 * (1 / 5) * style_factor[n] * style_scale / (n_content / 2 * content_scale)
                                 for n in stlib.STYLE_LAYERS},
    f"stlib preset {preset.name!r}": {n: preset.style_weight * preset.style_layers[n] / preset.content_weight
                                      for n in stlib.STYLE_LAYERS},
}
print(f"{'style weight per layer, in stlib units':<40}" + "".join(f"{n:>10}" for n in stlib.STYLE_LAYERS))
for label, row in equivalent.items():
    print(f"{label:<40}" + "".join(f"{row[n]:>10.2g}" for n in stlib.STYLE_LAYERS))
"""),
    ("md", r"""
Once the conventions are taken out, settings that look a million times apart land within an order of
magnitude or two of each other - and the rest is taste and the network: with different weights (or the
offline random filters) the raw loss sizes change, which is why stlib keeps a separate preset for them.
When you copy weights from a paper or a repository, copy its Gram normalisation, loss reductions and input
range with them - or convert, as above.

**Next:** the optimiser that minimises all this.
"""),
]
