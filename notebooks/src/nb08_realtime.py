"""Source of notebooks/08_realtime.ipynb (built by notebooks/make_notebooks.py)."""

CELLS = [
    ("md", r"""
# 08 · Real time: a network that paints in one pass

Phone apps apply a style in milliseconds; the algorithm of this course takes seconds to minutes per photo.
Both use the same losses. The difference is **when the optimisation happens**:

* **Gatys et al. (notebooks 01-07)** optimise the *pixels* of every new photo: hundreds of forward and
  backward passes through VGG-19, every time.
* **Johnson, Alahi & Fei-Fei (2016)** and **Ulyanov et al. (2016)** optimise, once, the *weights* of a small
  image-to-image network so that its output has a low value of the very same objective **for every photo**
  of a training set. Afterwards a new photo costs one forward pass of the small network. The cost of
  optimisation is paid once and shared by every later photo: **amortisation**.

This notebook trains such a network with `stlib`'s own objective, watches it learn, compares it with
notebook 04's optimisation on photos it never saw, and ends with sliders that answer instantly. You will
write the normalisation layer that made these networks work well: instance normalisation.
"""),
    ("code", r"""
import time

import torch

from stlib import course, measures, plots
from stlib.style_training import HELD_OUT_PHOTOS, TRAIN_PHOTOS, score, train_style
from stlib.transform_net import SMALL, TransformNet

vgg = course.load_model()
SIZE = course.image_size(cpu=128, gpu=256, fast=64)            # training crops (square)
TRAIN_SECONDS = course.pick(120, fast=None)                   # a time budget (the notebook stays under 3 min)
TRAIN_STEPS = course.pick(1500, fast=24)
OPT_STEPS = course.pick(100, fast=6)                            # notebook 04's optimisation, for comparison
painting = stlib.load_image("swirls", SIZE)
terms = stlib.preset_for(vgg.weights_source)   # the preset's weights and layers
print(f"training photos: {', '.join(TRAIN_PHOTOS)}; never trained on: {', '.join(HELD_OUT_PHOTOS)}")
"""),
    ("md", r"""
## Why optimisation is slow

Each step of `stylize` is one forward and one backward pass through VGG-19 up to `relu5_1`, and a good
picture takes about a hundred steps. Time one run on a photo:
"""),
    ("code", r"""
cat = stlib.load_image("chelsea", SIZE)
stlib.stylize(cat, painting, size=SIZE, steps=2, model=vgg, progress=False)  # warm-up (one-off start-up costs)
optimised = stlib.stylize(cat, painting, size=SIZE, steps=OPT_STEPS, model=vgg, progress=False)
print(f"{optimised.steps} steps in {optimised.elapsed:.1f} s: {1000 * optimised.seconds_per_step:.0f} ms per step, "
      f"for one {cat.shape[-1]}x{cat.shape[-2]} photo")
"""),
    ("md", r"""
Every new photo pays this again. Johnson et al. instead train a network $f_\theta$ to minimise the
*expected* objective over photos $p$,

$$\min_\theta \; \mathbb{E}_p \left[\, \alpha\, \mathcal{L}_\text{content}(f_\theta(p), p) + \beta\,
\mathcal{L}_\text{style}(f_\theta(p), a) + \gamma\, \mathrm{TV}(f_\theta(p)) \,\right]$$

with the same losses as notebook 03 and the painting $a$ fixed. Each training step takes a batch of photos,
runs them through $f_\theta$, scores the outputs with VGG-19 exactly as `stylize` scores its image, and
moves $\theta$ (not the pixels) downhill with Adam.

## The network

`stlib.transform_net.TransformNet` follows Johnson et al.: a 9x9 convolution, two stride-2 convolutions
down to a quarter of the size, residual blocks, two 2x upsampling layers back to full size and a 9x9
convolution to three colour channels, with a normalisation layer after each convolution. One change: its
output is a *change* to the photo, starting at zero, so that the untrained network returns the photo itself -
the way `stylize` starts from the photo. On a CPU it is a small version (16 channels, 3 residual blocks);
Johnson's has 32 and 5.
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
for label, config in {"this notebook's (CPU)": SMALL, "Johnson et al.'s": TransformNet().config}.items():
    net = TransformNet(config)
    print(f"{label:22} {config.channels} channels, {config.residual_blocks} residual blocks: "
          f"{net.parameter_count():,} parameters ({4 * net.parameter_count() / 1e6:.1f} MB in float32)")
untrained = TransformNet(SMALL)
with torch.no_grad():
    gap = float((untrained(cat) - cat).abs().max())
print(f"the untrained network returns the photo: largest pixel difference {gap:.4f} (pixels are kept within "
      "[0.001, 0.999], where the logit is finite)")
assert gap <= 1e-3 + 1e-6
"""),
    ("md", r"""
### Upsampling without checkerboards

How the network grows its feature maps back to full size matters. A **transposed convolution** with stride 2
(the "deconvolution" of early networks) spreads each input value over a 3x3 patch of an output twice as
large: every other output pixel receives two contributions per axis, the rest one, so even a flat input comes
out as a grid pattern that training must fight (Odena, Dumoulin & Olah, 2016, "Deconvolution and checkerboard
artifacts"). **Upsampling then convolving** - copy each value to a 2x2 block, then a normal 3x3 convolution -
treats every output pixel alike. Both layers below are untrained (random weights); the input is flat grey.
"""),
    ("code", r"""
from stlib.transform_net import UpLayer

torch.manual_seed(0)
flat = torch.full((1, 16, 16, 16), 0.5)       # a flat feature map: (1, C, H, W), every value 0.5
outputs = {}
for mode in ("transposed", "nearest"):
    up = UpLayer(16, 16, "instance", mode)
    layer = torch.nn.Sequential(*list(up)[:-2])      # the 2x upsampling convolution, without its norm and ReLU
    with torch.no_grad():
        outputs[mode] = layer(flat)[0, 0]      # channel 0 of the (1, 16, 32, 32) output
spread = {mode: float(out[2:-2, 2:-2].std()) for mode, out in outputs.items()}  # away from the border


def shown(out):  # both on one grey scale: the mean at 0.5, +-4 standard deviations of the transposed output
    return ((out - out.mean()) / (8 * spread["transposed"]) + 0.5).clamp(0, 1)


plots.show_images({"flat input": flat[0, :3], f"transposed conv (std {spread['transposed']:.3f})":
                   shown(outputs["transposed"]), f"upsample + conv (std {spread['nearest']:.1e})":
                   shown(outputs["nearest"])}, size=2.6)
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
course.claim("from a flat input the transposed convolution makes a grid pattern (pixel spread above 0.01) while "
             "upsample-then-conv stays flat (spread below 1e-5)",
             spread["transposed"] > 0.01 and spread["nearest"] < 1e-5,
             f"spread {spread['transposed']:.3f} vs {spread['nearest']:.1e}")
"""),
    ("md", r"""
## Training, and watching it learn

`train_style` takes random square crops of the training photos (random scale, position and mirror image:
*augmentation*, so that the network sees thousands of different photos), four per step, and scores the
outputs with the preset's objective, in the engine's precision (bf16 on recent CPUs, on a GPU too). Every 25
steps it scores a fixed *probe* batch of crops and keeps the best weights so far: interrupting the cell
(Ctrl-C, or the stop button) keeps them. This cell trains for 2 minutes (`stlib train-style` takes 3 by
default); on a GPU it trains on 256 px crops.

The callback keeps a few snapshots of the network's output for a photo it never trains on.
"""),
    ("code", r"""
snapshots = {"photo (never trained on)": cat}


def keep_snapshot(info):
    if len(snapshots) < 6 or info.step == info.steps:
        snapshots[f"step {info.step} ({info.elapsed:.0f} s)"] = info.preview(cat)


style = train_style(painting, model=vgg, size=SIZE, steps=TRAIN_STEPS, time_limit=TRAIN_SECONDS,
                    every=course.pick(25, fast=4), callback=keep_snapshot)
snapshots[f"best weights (step {style.settings['best_step']})"] = style.apply(cat)
print(f"{style.settings['steps']} steps in {style.elapsed:.0f} s" + (f" ({style.stopped})" if style.stopped else ""))
"""),
    ("code", r"""
probes = [(0.0, style.settings["start_probe"])] + [(h["time"], h["probe"]) for h in style.history if "probe" in h]
fig = plots.plot_losses({"training batch (4 random crops)": style.history}, x="time")
fig.axes[0].plot(*zip(*probes), "o-", markersize=3, label="probe batch (4 fixed crops)")
fig.axes[0].legend(frameon=False)
first, best = probes[0][1], style.settings["best_probe"]
print(f"The probe objective fell from {first:.3g} (the untrained network: the photos themselves) to {best:.3g} "
      f"({100 * (1 - best / first):.0f} % lower) in {style.settings['best_step']} steps.")
fig
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
course.claim("the probe objective of the best weights is at least 50 % below the untrained network's",
             best <= 0.5 * first, f"{first:.3g} -> {best:.3g}")
"""),
    ("md", r"""
The training batch's curve jumps about - every step scores different crops - while the probe batch shows the
trend. The snapshots show the same photo as the network learns. What it learns in these minutes is mostly the
painting's **palette** (the cell after the snapshots measures the mean colour), laid on in broad patches rather
than the painting's strokes (the comparison further down measures how broad). Fine texture needs far more training than fits
in a few minutes on a laptop (Johnson et al. trained for 40,000 steps of 4 photos, drawn from 80,000). In our
time-boxed trials (`benchmarks/REALTIME_TUNING.md`) no learning rate, batch size, crop size, loss weighting,
output head, noise input or extra training picture gave texture within two or three minutes.
"""),
    ("code", r"""
on_cat = [score(vgg, image, cat, painting, terms) for image in snapshots.values()]  # same objective, this photo
print(f"On the cat, which it never trained on, the objective went from {on_cat[0]:.3g} (the photo) to "
      f"{on_cat[-1]:.3g} with the best weights.")
plots.show_images({f"{title}: objective {value:.3g}": image for (title, image), value in zip(snapshots.items(), on_cat)},
                  ncols=4, size=2.6)
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
# The palette: how far the mean colour (R, G, B) is from the painting's, for the photo and the network's output.
palette = painting.mean(dim=(0, 2, 3))
gap_photo, gap_net = (float((image.mean(dim=(0, 2, 3)) - palette).norm()) for image in (cat, style.apply(cat)))
course.claim("on the cat, which it never trained on, the network lowered the objective and moved the mean colour "
             "at least halfway towards the painting's", on_cat[-1] < on_cat[0] and gap_net <= 0.5 * gap_photo,
             f"objective {on_cat[0]:.3g} -> {on_cat[-1]:.3g}; distance of the mean colour to the painting's "
             f"{gap_photo:.3f} -> {gap_net:.3f}")
"""),
    ("md", r"""
## Optimisation against the network, on photos it never saw

Both answers are scored by the same number: the objective of notebook 03 with the same targets (the photo's
features, the painting's Gram matrices), in float32. Optimisation minimises it for this one photo; the network
was trained to keep it low on average, and never saw these photos. The time is what a new photo costs:
seconds of optimisation against one forward pass.
"""),
    ("code", r"""
rows, panels, patterns = [], {}, {}   # patterns: size (px) of what each answer added to the photo
for name in HELD_OUT_PHOTOS:
    photo = stlib.load_image(name, SIZE)
    fast = style.apply(photo)                  # the first pass at a new size sets up its kernels: not timed
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        fast = style.apply(photo)
        timings.append(1000 * (time.perf_counter() - start))
    net_ms = sorted(timings)[1]                # the median of three
    slow = stlib.stylize(photo, painting, size=SIZE, steps=OPT_STEPS, model=vgg, progress=False)
    rows.append((name, score(vgg, photo, photo, painting, terms), score(vgg, fast, photo, painting, terms), net_ms,
                 score(vgg, slow.image, photo, painting, terms), slow.elapsed))
    patterns[name] = (measures.pattern_scale(fast, photo), measures.pattern_scale(slow.image, photo))
    panels.update({name: photo, f"{name}, network: {net_ms:.0f} ms": fast,    # titles are keys: one per photo
                   f"{name}, optimisation: {slow.elapsed:.1f} s": slow.image})
print(f"{'photo':10} {'objective of the photo':>23} {'network':>20} {'optimisation':>24}")
for name, start_value, net_value, net_ms, opt_value, opt_s in rows:
    print(f"{name:10} {start_value:23.4g} {net_value:11.4g} in {net_ms:4.0f} ms {opt_value:11.4g} in {opt_s:6.1f} s")
plots.show_images(panels, ncols=3, size=2.6)
"""),
    ("code", r"""
speedup = min(opt_s * 1000 / net_ms for *_, net_ms, _, opt_s in rows)
kept = max((start_value - net_value) / (start_value - opt_value) for _, start_value, net_value, _, opt_value, _ in rows)
worst = min((start_value - net_value) / (start_value - opt_value) for _, start_value, net_value, _, opt_value, _ in rows)
print(f"On the photos it never saw, the network was at least {speedup:.0f} times faster than optimisation and "
      f"achieved {100 * worst:.0f}-{100 * kept:.0f} % of the objective's drop that optimisation achieved.")
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
course.claim("on both photos it never saw, the network answered at least 10 times faster than optimisation and "
             "lowered the objective, by less than optimisation did",
             speedup >= 10 and worst > 0 and kept < 1,
             f"at least {speedup:.0f}x faster; {100 * worst:.0f}-{100 * kept:.0f} % of optimisation's drop")
course.claim("what the network adds to a photo is coarser than what optimisation adds: on both photos its pattern "
             "(stlib.measures.pattern_scale of the change) is at least 1.2 times as wide",
             all(net_px >= 1.2 * opt_px for net_px, opt_px in patterns.values()),
             "; ".join(f"{name}: network {a:.1f} px, optimisation {b:.1f} px" for name, (a, b) in patterns.items()))
"""),
    ("md", r"""
That is the trade: a network trained for a few minutes answers many times faster (more so at larger
sizes), and lowers the objective less than a dedicated optimisation, which is free to fit every detail of one
photo - including the fine grain that the network, after a few hundred steps, paints as broad patches. More training
(a GPU, many more photos, many more steps) is what Johnson et al. used to close part of the gap; the rest is the price of one network for all photos.

### Exercise · Instance normalisation

Johnson et al. used *batch* normalisation. Ulyanov, Vedaldi and Lempitsky (2016) noticed that replacing it by
**instance normalisation** - normalise each image's each channel by its own mean and variance over its
positions - made the results markedly better: the network no longer needs to learn to undo each photo's
contrast, and a photo's output does not depend on the other photos in the batch.

Write `instance_norm(x, eps)` for a batch `x` of shape (B, C, H, W): subtract the mean over H and W and
divide by $\sqrt{\text{variance} + \varepsilon}$, with one mean and (biased, divided by $H\cdot W$) variance per
image and channel.
"""),
    ("code", r'''
def instance_norm(x, eps=1e-5):
    """(B, C, H, W) -> same shape: each image's each channel shifted to mean 0 and scaled to variance 1."""
    raise NotImplementedError  # your code here
'''),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
stlib.checks.check_instance_norm(instance_norm)
"""),
    ("solution", "instance_norm"),
    ("md", r"""
What it changes: with batch normalisation (as in training), a photo's output depends on which other photos
share its batch; with instance normalisation it never does.
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
crops = torch.cat([stlib.resize(stlib.load_image(name), (48, 48)) for name in ("chelsea", "coffee", "astronaut")])
for norm in ("batch", "instance"):
    torch.manual_seed(0)
    net = TransformNet(channels=8, residual_blocks=1, norm=norm).train()
    torch.nn.init.normal_(net.out.conv.weight, std=0.05)   # a network that changes its input
    with torch.no_grad():
        alone, together = net(crops[:1]), net(crops)[:1]
    moved = float((alone - together).abs().max())
    print(f"{norm:8} norm: the cat alone vs in a batch of three -> largest pixel difference "
          f"{'0 (< 1e-5)' if moved < 1e-5 else 'above 1e-3' if moved > 1e-3 else 'between 1e-5 and 1e-3'}")
    assert (moved < 1e-5) if norm == "instance" else (moved > 1e-3)
"""),
    ("md", r"""
## Sliders: instant results

A forward pass is fast enough to follow a slider. Pick a photo and the **style strength** - a blend between
the photo (0) and the network's output (1); a network trained at one style weight cannot change its
balance after training, a blend can (Dumoulin et al.'s *conditional instance normalisation*, 2017, trains
one network for many styles and strengths). Each move runs the network again and shows how long it took.
"""),
    ("code", r"""
import io

import ipywidgets as widgets

photos = {name: stlib.load_image(name, course.pick(384, fast=64)) for name in stlib.bundled_images("content")}
choice = widgets.Dropdown(options=list(photos), value="chelsea", description="photo")
strength = widgets.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.05, description="strength")
view, timing = widgets.Image(format="png"), widgets.Label()
times_ms = []


def update(_=None):
    start = time.perf_counter()
    out = style.apply(photos[choice.value], strength=strength.value)
    times_ms.append(1000 * (time.perf_counter() - start))
    buffer = io.BytesIO()
    stlib.images.to_pil(out).save(buffer, format="png")
    view.value = buffer.getvalue()
    timing.value = f"{out.shape[-1]}x{out.shape[-2]} px in {times_ms[-1]:.0f} ms"


choice.observe(update, "value")
strength.observe(update, "value")
for name in photos:   # one pass over every photo, as a student moving the dropdown would
    choice.value = name
strength.value = 0.5
widgets.VBox([widgets.HBox([choice, strength, timing]), view])
"""),
    ("code", r"""
typical = sorted(times_ms)[len(times_ms) // 2]
print(f"A slider move took {typical:.0f} ms (median of {len(times_ms)}), "
      f"{optimised.elapsed * 1000 / typical:.0f} times less than one optimisation at {SIZE} px above.")
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
course.claim("a slider move (one forward pass on a larger photo) takes less time than one optimisation of the "
             "small photo above", typical < optimised.elapsed * 1000,
             f"{typical:.0f} ms vs {optimised.elapsed:.1f} s")
"""),
    ("md", r"""
## Keep it, use it elsewhere

A trained style is a small file: the weights, the settings it was trained with and a checksum (a damaged file,
or one that is not a trained style, is refused with a sentence). The command line does the same as this
notebook:

```bash
stlib train-style painting.jpg -o painting.pt      # a CPU: 128 px crops, about 3 minutes
stlib apply painting.pt photo.jpg -o out.png --strength 0.8
```
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
import tempfile
from pathlib import Path

from stlib.style_file import load_style

with tempfile.TemporaryDirectory() as folder:
    path = style.save(Path(folder) / "swirls.pt")
    again = load_style(path)
    same = torch.equal(again.apply(cat), style.apply(cat))
    print(f"saved and loaded again: identical output {same}; the file is under "
          f"{-(-path.stat().st_size // 1_000_000)} MB")
"""),
    ("md", r"""
**Further:** one network per style is still a training run per style. *Arbitrary* style transfer removes
that too: Huang & Belongie's AdaIN (2017) matches the mean and variance of VGG features to any painting's in
one pass - instance normalisation with the painting's statistics instead of learnt ones.
"""),
]
