"""Source of notebooks/00_start_here.ipynb (built by notebooks/make_notebooks.py)."""

CELLS = [
    ("md", r"""
# 00 · Start here: what neural style transfer does

Take a photo and a painting. *Neural style transfer* paints a new picture that shows **what is in the
photo** drawn **the way the painting is drawn**. Gatys, Ecker and Bethge (CVPR 2016) found that one network
trained only to recognise objects - VGG-19 - already separates the two:

* **content** - *what is where* - lives in the activations of its deeper layers;
* **style** - colours, strokes, textures, regardless of where they are - lives in the *correlations*
  between its channels (Gram matrices).

The new picture is found by gradient descent on its pixels: change them until the network sees the photo's
content and the painting's style in them at the same time. This course rebuilds that idea one piece at a
time; this first notebook shows the whole thing once, checks your set-up and gives the road map.
"""),
    ("md", r"""
## The network

`stlib.load_vgg19()` loads the 16 convolutions of VGG-19 (never the 500 MB classifier). With internet it
uses torchvision's ImageNet weights - the same architecture trained on the same data as the Caffe model of
Gatys et al., but not their weights: theirs were also rescaled so that every filter's mean activation is 1.
Without internet it falls back to *seeded random* weights and says so.
`stlib.course.load_model` does the same and prints, once, which weights you got.
"""),
    ("code", r"""
from stlib import course, plots

vgg = course.load_model()
SIZE = course.image_size()          # long edge in pixels: 192 on a CPU, 384 on a GPU, 64 in fast mode
STEPS = course.pick(60, fast=5)     # optimisation steps (fast mode: just enough to see it work)
"""),
    ("md", r"""
## A photo and a painting

stlib ships a few free images so everything works offline: photos, four public-domain paintings (Van Gogh's
*The Starry Night*, Turner's *The Shipwreck*, Matisse's *Woman with a Hat*, Munch's *The Scream*) and
generated textures (`swirls`, `mosaic`, ...) whose simple, known structure some notebooks use to make a
point. Any path, URL, PIL image or tensor works too.
"""),
    ("code", r"""
plots.show_images({"content: astronaut": "astronaut", "style: The Starry Night": "starry_night"}, size=3.5)
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
print("content images:", ", ".join(sorted(stlib.bundled_images("content"))))
print("style images:  ", ", ".join(sorted(stlib.bundled_images("style"))))
"""),
    ("md", r"""
## One style transfer

`stlib.stylize` is the whole method in one call. It starts from the photo and runs L-BFGS on the pixels; the
progress bar shows the loss falling. On a laptop CPU this takes about ten seconds at 192 px
(`precision="auto"` uses bfloat16 where the processor supports it).
"""),
    ("code", r"""
result = stlib.stylize("astronaut", "starry_night", size=SIZE, steps=STEPS, model=vgg, precision="auto")
plots.show_images({"content": "astronaut", "style": "starry_night",
                   f"result: {result.steps} steps, {result.elapsed:.0f} s": result}, size=3.5)
"""),
    ("md", r"""
Everything that happened is in `result`: `result.image` (a 1×3×H×W tensor), `result.history` (every loss
at every step), `result.settings` (the weights and layers that were used), `result.save("out.png")`.
"""),
    ("code", r"""
print({key: result.settings[key] for key in ("content_weight", "style_weight", "style_layers", "preset")})
"""),
    ("md", r"""
## Check your environment

Each notebook needs Python ≥ 3.9, PyTorch ≥ 2.1 and stlib. A GPU is optional: on a CPU the notebooks use
small images and still finish within a few minutes each.
"""),
    ("code", r"""
print(course.environment_report(vgg))
"""),
    ("md", r"""
### ImageNet weights or the offline approximation?

If the line above says **random**, no ImageNet weights were found and there is no internet to fetch them.
Every notebook still runs top to bottom and every idea still holds, but the pictures are an **offline
approximation**: random filters transfer colours and textures and keep the photo's layout, but not the
brush strokes of the paper. Each notebook says this once, at the top. To get the real weights onto a machine
without internet:

1. on any machine **with** internet and this course installed (`pip install -e .` in a clone), run
   `stlib weights export -o vgg19-features.pth`: it downloads the weights once and writes a 40 MB file of
   just the convolutions;
2. copy `vgg19-features.pth` to the offline machine;
3. there, set `STLIB_WEIGHTS=/path/to/vgg19-features.pth` before starting Jupyter
   (or pass `weights="/path/to/vgg19-features.pth"` to `stlib.load_vgg19`).

On a machine with internet nothing is needed: the first `load_vgg19()` downloads the ImageNet weights
once (548 MB) into the PyTorch cache.
"""),
    ("md", r"""
### Do the default settings work with your weights?

stlib's default weights for ImageNet (`stlib.presets.IMAGENET`) were put together from published settings on
machines that could not download ImageNet weights. With real weights, the cell below checks them: it paints
the cat in the style of The Starry Night (256 px, 100 steps: about a minute on a laptop CPU, seconds on a GPU)
and prints one line. With the offline weights it only says that it cannot judge them.

If it says **FAILED**, please copy that line into an issue on the course's repository (the README says how):
you will be the first to see what the defaults do with real weights.
"""),
    ("code", r"""
from stlib.selftest import selftest_line

print(selftest_line(vgg))   # the same check as `stlib weights selftest` on the command line
"""),
    ("md", r"""
## Open the course anywhere

* **Google Colab** - press the *Open in Colab* badge at the top of any notebook. The first code cell notices
  Colab, clones the course and installs stlib (about a minute). For speed choose *Runtime → Change runtime
  type → GPU*; images then grow to 384 px automatically.
* **Binder** - the *Binder* badge starts JupyterLab with everything installed (CPU only; the first start
  can take a few minutes). Binder gives you **2 GB of memory**, and each open notebook's kernel holds
  about 0.7-0.85 GB: three open notebooks run out of memory and the kernel dies. So keep one or two
  notebooks open - **close a notebook's tab when you move on** (on this Binder that shuts its kernel down;
  elsewhere use *Kernel → Shut Down Kernel*). Binder also shuts down kernels that have not run a cell for
  15 minutes: if a cell then fails with a `NameError`, run the notebook again from the top.
* **Your own machine** - see the README: `make lab` creates the environment and opens JupyterLab.
"""),
    ("md", r"""
## Road map

| notebook | what you build | exercises |
|---|---|---|
| [01 · Content representation](01_content_representation.ipynb) | convolutions, the VGG-19 layer table, feature maps, reconstructing a photo from one layer | content loss, receptive field |
| [02 · Gram matrices](02_gram_matrices.ipynb) | the Gram matrix by hand, why it ignores layout, reconstructing style from growing layer sets | Gram matrix, style loss |
| [03 · Losses and weights](03_losses.ipynb) | content, style and TV losses, the α/β ratio, how the published conventions convert | TV loss, layer weights, the total objective |
| [04 · Optimisation](04_optimisation.ipynb) | gradient descent on pixels by hand, `stlib.gatys`, Adam vs L-BFGS, initialisation, seeds | one gradient step, L-BFGS's closure, seeded noise, the starting image |
| [05 · The live studio](05_studio.ipynb) | sliders that steer a running optimisation | which layer holds a stroke |
| [06 · Beyond the paper](06_beyond.ipynb) | keeping the photo's colours, blending styles, coarse-to-fine, average pooling, a style per region | the masked Gram matrix |
| [07 · Capstone](07_capstone.ipynb) | the whole method from your own pieces, checked against `stlib.gatys` | the whole transfer |
| [08 · Real time](08_realtime.ipynb) | a feed-forward network trained once per style with the same losses; network vs optimisation; instant sliders | instance normalisation |

Each exercise has an instant check (`stlib.checks`) and a hidden solution. Start with 01.
"""),
]
