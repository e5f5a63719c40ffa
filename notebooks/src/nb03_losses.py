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

You will write the TV loss, choose per-layer style weights and assemble the total objective.
"""),
    ("code", r"""
import torch

from stlib import course, measures, plots

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
per_layer = {name: float(stlib.style_layer_loss(feats[name], targets.style[name])) for name in stlib.STYLE_LAYERS}


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
the run, no layer contributes more than 2× the share of any other. (There are many answers; think about
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
Does the preset pass this rule? Not necessarily: it was tuned by eye for pictures at the notebook's
budget, not for equal shares at the start.
"""),
    ("code", r"""
preset_shares = {n: preset.style_layers[n] * per_layer[n] for n in stlib.STYLE_LAYERS}
spread = max(preset_shares.values()) / min(preset_shares.values())
print(f"preset {preset.name!r}: the largest layer share is {spread:.1f}x the smallest "
      f"({'within' if spread <= 2 else 'outside'} the exercise's 2x rule)")
"""),
    ("md", r"""
With the offline weights the `offline` preset does not pass the 2× rule, but it comes much closer than equal
weights: its per-layer weights (printed at the top) grow with depth, which offsets most of the fall of the raw
losses, so no layer is left out. Equal weights are the ones that leave layers out: the shallow layers' large
raw losses let `relu1_1` and `relu2_1` carry most of the style loss. (With ImageNet weights the `imagenet`
preset is simply the tutorial's equal weights, chosen without regard to this rule; `stylize(balance="loss")`
sets the weights from the shares measured at the start, as your exercise does.) The cell below checks this on the shares printed above.
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
equal_shares = {n: per_layer[n] / sum(per_layer.values()) for n in stlib.STYLE_LAYERS}
equal_spread = max(equal_shares.values()) / min(equal_shares.values())
if preset.name == "offline":   # the text describes the offline weights
    course.claim("with the offline weights, equal weights let relu1_1 and relu2_1 carry more than half of the "
                 "style loss, and the offline preset spreads the layers' shares less than half as widely",
                 equal_shares["relu1_1"] + equal_shares["relu2_1"] > 0.5 and spread < equal_spread / 2,
                 f"equal weights: relu1_1 + relu2_1 = {100 * (equal_shares['relu1_1'] + equal_shares['relu2_1']):.0f} %,"
                 f" largest share {equal_spread:.1f}x the smallest; preset: {spread:.1f}x")
"""),
    ("md", r"""
Compare three weightings on the same photo and painting. (Until you fill in `my_layer_weights`, the
third picture uses the preset.) To compare them fairly, each is scaled so that its **weighted style loss
at the start** - $\beta \sum_l w_l E_l$ at the photo - is the preset's: all three pull equally hard
towards the painting at the first step, and only the split between the layers differs. (Scaling by the
sum of the weights instead would not be fair: a weighting that favours the layers with large raw losses
would pull harder from the first step. The cell prints how much harder, for equal weights against
balanced ones.)
"""),
    ("code", r"""
weightings = {"equal weights": {n: 1.0 for n in stlib.STYLE_LAYERS}, f"preset {preset.name!r}": preset.style_layers,
              "your weights": my_layer_weights or preset.style_layers}
start_pull = sum(preset.style_layers[n] * per_layer[n] for n in stlib.STYLE_LAYERS)   # sum_l w_l E_l, preset
runs = {}
for label, weights in weightings.items():
    scale = preset.style_weight * start_pull / sum(weights[n] * per_layer[n] for n in stlib.STYLE_LAYERS)
    runs[label] = stlib.stylize(photo, painting, style_layers=weights, style_weight=scale, size=SIZE, steps=STEPS,
                                model=vgg, precision="auto")
    print(f"{label:>18}: style weight {scale:.3g}, weighted style loss at the start "
          f"{runs[label].history[0]['style']:.4g}")
# Scaling by the sum of the weights instead: equal vs balanced (w_l = 1 / E_l) pull, at the first step.
mean_e = sum(per_layer.values()) / len(per_layer)
harmonic_e = len(per_layer) / sum(1 / v for v in per_layer.values())
print(f"(scaled by the sum of their weights, equal weights would pull {mean_e / harmonic_e:.1f}x as hard as balanced ones)")
plots.show_images(runs, size=3)
"""),
    ("md", r"""
The printed losses confirm that all three start with the same style pull. With the offline weights, equal
weights - where `relu1_1` and `relu2_1` dominate - repaint the photo in the painting's main colours in
large, smooth patches. The preset hands the deep layers a share; random deep filters describe no larger
patterns, so what they add is fine, multi-coloured grain. (With ImageNet weights the deep layers'
statistics describe larger patterns, and a share for them gives larger strokes.)
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
grain = {label: float(stlib.tv_loss(run.image)) for label, run in runs.items()}
preset_label = f"preset {preset.name!r}"
if preset.name == "offline":   # the text describes the offline weights
    course.claim("with the offline weights, equal weights paint smoother patches than the preset, which adds "
                 "fine grain (a larger total variation)",
                 grain["equal weights"] < grain[preset_label],
                 "TV " + ", ".join(f"{label} {value:.4f}" for label, value in grain.items()))
"""),
    ("md", r"""
## Why some weightings wash out: each layer's share of the pull

A weight says little on its own; what matters is the share of the pull a layer ends up with. Two measures
(`stlib.shares`): a layer's share of the weighted style loss $w_l E_l / \sum_k w_k E_k$, and its share of the
*gradient* on the pixels (the size of $\partial (w_l E_l)/\partial x$) - how hard it actually pushes the
image. A layer whose bar segment is a sliver is, in practice, switched off: its statistics, however
carefully weighted, barely move the picture. That is how a weighting "washes out" the large-scale structure
that only the deep layers see.

`stlib.balance.balanced_layer_weights` turns this around: it measures $E_l$ at the start image and sets
$w_l \propto 1/E_l$, so that every layer carries the same share of the loss at the start, whatever network
is loaded, while the total pull stays the preset's. (`by="gradient"` balances the gradient shares instead.)
"""),
    ("code", r"""
from stlib.balance import balanced_layer_weights
from stlib.shares import layer_shares

balanced = balanced_layer_weights(vgg, photo, targets.style, preset.style_layers)   # equal loss shares
fixed_and_balanced = {"equal weights": {n: 1.0 for n in stlib.STYLE_LAYERS},
                      f"preset {preset.name!r}": preset.style_layers, "balanced": balanced}
measured = {label: layer_shares(vgg, photo, targets.style, w) for label, w in fixed_and_balanced.items()}
for label, m in measured.items():
    layer, share = m.smallest()
    print(f"{label:>14}: smallest loss share {layer} {100 * share:4.1f} %")
plots.plot_layer_shares(measured)
"""),
    ("md", r"""
The balanced bars are equal in loss by construction; their gradient shares are not, because a loss can be
large and still flat in the pixels (or small and steep). Painted with each weighting, from the same start
pull (the balanced weights keep the preset's total, so no rescaling is needed):
"""),
    ("code", r"""
runs["balanced"] = stlib.stylize(photo, painting, style_layers=balanced, style_weight=preset.style_weight, size=SIZE,
                                 steps=STEPS, model=vgg, precision="auto")
print("loss shares at the returned image:")
for label in ("equal weights", f"preset {preset.name!r}", "balanced"):
    print(f"{label:>14}:", "  ".join(f"{n} {100 * v:.0f}%" for n, v in runs[label].layer_shares().items()))
plots.show_images({label: runs[label] for label in ("equal weights", f"preset {preset.name!r}", "balanced")}, size=3)
"""),
    ("md", r"""
## The total objective

### Exercise 3 · Assemble the objective

Write `total_loss(content_term, style_terms, layer_weights, alpha, beta)`: `content_term` is the content
loss (a 0-dim tensor), `style_terms` maps each style layer to its unweighted $E_l$, `layer_weights` to its
$w_l$. Return $\alpha\,\mathcal{L}_\text{content} + \beta \sum_l w_l E_l$ as a tensor (TV left out here).
"""),
    ("code", r'''
def total_loss(content_term, style_terms, layer_weights, alpha, beta):
    """alpha * content_term + beta * sum over layers of layer_weights[l] * style_terms[l]."""
    raise NotImplementedError  # your code here
'''),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
stlib.checks.check_total_loss(total_loss, vgg)
"""),
    ("solution", "total_loss"),
    ("md", r"""
## The α/β ratio

Only the *ratio* of the content and style weights matters for where the optimum lies (scaling the whole
loss by a constant moves no minimum). Small β/α: the photo barely changes. Large β/α: the painting's
texture takes over and the photo's content fades.

Where is "small" and "large"? It depends on the images and the network, so measure it: the **balance**
is the β/α at which the two terms are equal at the start - the weighted style loss of the photo (what
keeping the photo costs) against the content loss of the painting (what losing the photo entirely would
cost). A sweep of fixed ratios (say 10⁻⁴ … 1 × the preset) easily lands where style already wins every
cell, and then the last pictures all look alike. So the sweep below, like the studio's (notebook 05),
spans the balance: from 10^-0.5 to 10^1.5 times it, half a decade apart, each run with the preset's
optimiser and steps and the TV weight set to 0, so that only the two terms being compared are in the
objective.
"""),
    ("code", r"""
painting_at_photo = stlib.resize(painting, tuple(photo.shape[-2:]))
with torch.no_grad():
    content_if_lost = float(stlib.content_loss(stlib.extract_features(vgg, painting_at_photo, ["relu4_2"])["relu4_2"],
                                               targets.content["relu4_2"]))
balance = content_if_lost / start_pull            # beta / alpha at which the two terms are equal at the start
print(f"balance: beta/alpha = {balance:.3g} (the preset uses {preset.style_weight / preset.content_weight:.3g})")
sweep = {}
for decades in (-0.5, 0.0, 0.5, 1.0, 1.5):
    beta = preset.content_weight * balance * 10**decades
    sweep[f"β/α = balance × 10^{decades:g}"] = stlib.stylize(
        photo, painting, content_weight=preset.content_weight, style_weight=beta, tv_weight=0, size=SIZE,
        steps=STEPS, model=vgg, precision="auto")
plots.show_images(sweep, ncols=5, size=2.6)
"""),
    ("md", r"""
From left to right the painting's texture takes over and the photo fades a little more at every step. The
cell below measures how much of the photo's layout each picture keeps (`stlib.measures.layout_similarity`:
the correlation of the brightness over a coarse grid, 1 = all of it).
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
kept = {label: measures.layout_similarity(run, photo) for label, run in sweep.items()}
values = list(kept.values())
course.claim("the photo's layout fades step by step across the sweep (each picture keeps less of it than the one "
             "on its left)",
             all(a > b for a, b in zip(values, values[1:])),
             "layout kept: " + ", ".join(f"{v:.2f}" for v in values))
"""),
    ("md", r"""
## Conventions: why published weights differ by orders of magnitude

Every implementation writes the same objective with different constants inside the losses, so its
weights are only meaningful together with its conventions:

| | network and input | layers | Gram matrix | style loss per layer | content loss | published weights |
|---|---|---|---|---|---|---|
| Gatys et al. 2016 | Caffe VGG-19 **rescaled so every filter's mean activation is 1**; 0-255, mean subtracted | content `relu4_2`, style `relu1_1`…`relu5_1` | raw sums $FF^\top$ | $\frac{1}{4N_l^2M_l^2}\sum(G-A)^2$, $w_l = \frac15$ | $\frac12\sum(F-P)^2$ | $\alpha/\beta = 10^{-3}$ … $10^{-4}$ |
| PyTorch tutorial (Jacq & Herring) | torchvision VGG-19; 0-1, ImageNet mean/std | content `conv2_2`, style `conv1_1`, `conv1_2`, `conv2_1`, `conv2_2`, `conv3_1` (before the ReLU) | $FF^\top / (CHW)$ | mean squared error | mean squared error | content 1, style $10^6$ |
| pystiche's example | torchvision VGG-19; 0-1, ImageNet mean/std | Gatys's | $FF^\top / (HW)$ | mean squared error, $w_l = \frac15$ | mean squared error | content 1, style $10^3$ |
| Johnson's *neural-style* (Lua) | Caffe VGG-19 (not rescaled); 0-255, mean subtracted | content `relu4_2`, style `relu1_1`…`relu5_1` | $FF^\top / (CHW)$ | mean squared error | mean squared error | content 5, style 100 |
| **stlib** | torchvision VGG-19 or offline random filters; 0-1, ImageNet mean/std | Gatys's | $FF^\top/(CHW)$ by default (`gram_norm=`) | mean squared error | mean squared error | the tutorial's 1 / $10^6$ at Gatys's layers (`IMAGENET`); `OFFLINE` for random filters |

($N_l = C$ channels, $M_l = H\cdot W$ positions of layer *l*.) So the three published settings differ in
more than constants: the tutorial's $10^6$ was tuned for five shallow, pre-ReLU layers and content at
`conv2_2`, and Gatys's ratio for a network whose filters were rescaled. Neither transfers exactly to
another network or other layers; stlib uses the tutorial's numbers at Gatys's layers as a starting point.
The constants inside the losses, though, can be converted exactly. Rather than trusting algebra, measure
the conversion factors on real feature maps: the painting (resized to the photo) as $x$, the photo as
target.
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
from stlib.conventions import CONVENTIONS, in_stlib_units, style_factor as library_factor

channels = {n: fx[n].shape[1] for n in stlib.STYLE_LAYERS}
measured_range = {"imagenet": (1.0, 1.0), "caffe": (content_scale, style_scale)}   # the 0-255 factors measured above
equivalent = {}
for conv in CONVENTIONS:
    if set(conv.style_layers) != set(stlib.STYLE_LAYERS):
        continue   # the tutorial's own layers (conv1_1 ... conv3_1): its numbers at Gatys's layers are the IMAGENET preset
    c_scale, s_scale = measured_range[conv.input_range]
    weights = in_stlib_units(conv, channels, n_content, c_scale, {n: s_scale for n in conv.style_layers})
    equivalent[conv.name] = weights.per_unit_content()
equivalent["stlib preset 'imagenet' (tutorial at Gatys's layers)"] = {n: 1e6 for n in stlib.STYLE_LAYERS}
equivalent[f"stlib preset {preset.name!r}"] = {n: preset.style_weight * preset.style_layers[n] / preset.content_weight
                                              for n in stlib.STYLE_LAYERS}
# The library's algebra (stlib.conventions, checked against each reference formula in tests/test_conventions.py)
# agrees with the factors measured on feature maps above:
print("conversion factors agree with the measurement:",
      all(abs(library_factor(gatys_conv, channels[n]) / style_factor[n] - 1) < 1e-3
          for gatys_conv in CONVENTIONS[-1:] for n in stlib.STYLE_LAYERS))
print(f"{'style weight per layer, in stlib units':<52}" + "".join(f"{n:>10}" for n in stlib.STYLE_LAYERS))
for label, row in equivalent.items():
    print(f"{label:<52}" + "".join(f"{row[n]:>10.2g}" for n in stlib.STYLE_LAYERS))
"""),
    ("md", r"""
Read the rows with care. The conversion takes out the constants inside the losses and the input range,
measured on *this* network; it cannot take out the rest of each row of the table: the tutorial's $10^6$
belongs to other layers, Gatys's ratio to a rescaled Caffe network, and the numbers depend on the image
(Gatys's content term grows with its size). So the rows are not expected to agree, and how far apart they
land says as much about the network as about taste. With the offline weights, in particular, every factor
above comes from random filters - the method of conversion carries over to ImageNet weights, the numbers
do not.
"""),
    ("code", r"""
spread = {n: max(row[n] for row in equivalent.values()) / min(row[n] for row in equivalent.values())
          for n in stlib.STYLE_LAYERS}
print("largest / smallest converted style weight per layer:", "  ".join(f"{n} {v:.2g}x" for n, v in spread.items()))
print(f"(measured with the {'offline random' if preset.name == 'offline' else 'ImageNet'} weights)")
"""),
    ("md", r"""
When you copy weights from a paper or a repository, copy its layers, Gram normalisation, loss reductions,
input range and network with them - or convert what can be converted, as above, and then tune by eye.

**Next:** the optimiser that minimises all this.
"""),
]
