"""Source of notebooks/06_beyond.ipynb (built by notebooks/make_notebooks.py)."""

CELLS = [
    ("md", r"""
# 06 · Beyond the paper: colour, blends, scale and pooling

The method of notebooks 01-04 is the whole of Gatys et al. (2016). Four small extensions from the same
authors and the people who followed make it much more usable, and each is one keyword of `stylize`:

* `preserve_color=` - paint the texture but keep the photo's colours;
* `style=[a, b], style_blend=` - mix two paintings;
* `scales=` - work coarse to fine, for larger images and larger strokes;
* `load_vgg19(pooling="avg")` - the average pooling the paper used for its figures.
"""),
    ("code", r"""
import time

from stlib import course, plots

vgg = course.load_model()
SIZE = course.image_size()
STEPS = course.pick(60, fast=3)
photo = stlib.load_image("astronaut", SIZE)
painting = stlib.load_image("swirls", SIZE)
plain = stlib.stylize(photo, painting, size=SIZE, steps=STEPS, model=vgg, precision="auto")
"""),
    ("md", r"""
## Keeping the photo's colours

Style transfer copies the painting's palette along with its strokes - often not what you want for a
portrait. Gatys, Bethge, Hertzmann and Shechtman ("Preserving Color in Neural Artistic Style Transfer",
2016) give two fixes:

* **luminance only** (`preserve_color="luminance"`): convert both images to YIQ, transfer the style on the
  brightness channel Y alone, then put the photo's colour channels I and Q back;
* **colour histogram matching** (`preserve_color="histogram"`): first recolour the painting so that its
  mean colour and colour covariance equal the photo's (`stlib.color.match_color`), then transfer as usual.
"""),
    ("code", r"""
luminance = stlib.stylize(photo, painting, preserve_color="luminance", size=SIZE, steps=STEPS, model=vgg,
                          precision="auto")
histogram = stlib.stylize(photo, painting, preserve_color="histogram", size=SIZE, steps=STEPS, model=vgg,
                          precision="auto")
plots.show_images({"photo": photo, "painting": painting, "painting recoloured to the photo":
                   stlib.color.match_color(painting, photo), "plain transfer": plain,
                   "preserve_color='luminance'": luminance, "preserve_color='histogram'": histogram},
                  ncols=3, size=3)
"""),
    ("md", r"""
Luminance-only transfer keeps the photo's colours exactly, at the price of strokes that carry no colour of
their own. Histogram matching lets the strokes keep their colour variations, in the photo's palette.

## Blending two styles

A blend is a weighted average of the two paintings' Gram matrices at every style layer:
$A_l = w\,A_l^{(1)} + (1 - w)\,A_l^{(2)}$. Moving `style_blend` slides between the two textures.
"""),
    ("code", r"""
other = stlib.load_image("mosaic", SIZE)
blends = {"swirls only": plain}
for w in (0.5, 0.0):
    label = "mosaic only" if w == 0 else f"{w:.0%} swirls + {1 - w:.0%} mosaic"
    blends[label] = stlib.stylize(photo, [painting, other], style_blend=[w, 1 - w], size=SIZE, steps=STEPS,
                                  model=vgg, precision="auto")
plots.show_images({"swirls": painting, **blends, "mosaic": other}, ncols=5, size=2.6)
"""),
    ("md", r"""
## Coarse to fine for larger images

A style's strokes have a size in *pixels* that the network sees through receptive fields of a fixed size
(notebook 01). On a large image they come out small, and L-BFGS from the photo at full resolution is
slow. `scales=2` first solves at half the size, then upsamples the result as the starting point at full
size: the large structures are settled cheaply on a quarter of the pixels and only refined at the top.
(`scales=3` adds a quarter-size stage, which pays off from about 512 px up.) Both runs below work at a
larger size than the rest of the notebook.
"""),
    ("code", r"""
BIG = course.image_size(cpu=320, gpu=768, fast=96)
single = stlib.stylize(photo, painting, size=BIG, steps=STEPS, model=vgg, precision="auto")
multi = stlib.stylize(photo, painting, size=BIG, scales=2, steps=[STEPS, max(1, STEPS // 3)], model=vgg,
                      precision="auto")
plots.show_images({f"one scale, {BIG} px, {STEPS} steps: {single.elapsed:.0f} s": single,
                   f"scales=2 ({' -> '.join(map(str, multi.settings['sizes']))} px, "
                   f"{' + '.join(map(str, multi.settings['steps']))} steps): {multi.elapsed:.0f} s": multi},
                  size=4.5)
"""),
    ("md", r"""
The coarse-to-fine run settles the large shapes at low resolution, so its strokes are larger and more
coherent, and most of its steps cost a quarter as much.

## Average vs max pooling

VGG-19 was trained with max pooling. Gatys et al. swap it for average pooling when synthesising images:
"slightly more appealing results". With average pooling every pixel of a 2×2 block receives gradient,
not only the strongest one, so updates are smoother. The weights stay the same; only the pooling layers
change.
"""),
    ("code", r"""
vgg_avg = course.load_model(pooling="avg", note=False)
avg = stlib.stylize(photo, painting, size=SIZE, steps=STEPS, model=vgg_avg, precision="auto")
plots.show_images({"max pooling (default)": plain, "average pooling": avg}, size=3.5)
"""),
    ("code", r"""
plots.plot_losses({"max pooling": plain, "average pooling": avg}, key="style")
"""),
    ("md", r"""
(The two losses are measured by different networks, so compare the shapes of the curves rather than their
heights.)

## Where to go from here

* Try your own photos and paintings: every function takes a path or URL (`stlib.load_image`).
* The command line does the same outside Jupyter: `stlib transfer photo.jpg painting.jpg -o out.png`.
* Ideas that build on this method: feed-forward networks trained to stylise in one pass (Johnson, Alahi and
  Fei-Fei, 2016), instance normalisation (Ulyanov et al., 2016), arbitrary styles in real time with
  adaptive instance normalisation (Huang and Belongie, 2017), and control over spatial regions and scale
  (Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer", 2017).
"""),
]
