"""Source of notebooks/06_beyond.ipynb (built by notebooks/make_notebooks.py)."""

CELLS = [
    ("md", r"""
# 06 · Beyond the paper: colour, blends, scale, pooling and regions

The method of notebooks 01-04 is the whole of Gatys et al. (2016). Five small extensions from the same
authors and the people who followed make it much more usable, and each is one keyword of `stylize`:

* `preserve_color=` - paint the texture but keep the photo's colours;
* `style=[a, b], style_blend=` - mix two paintings;
* `scales=` - work coarse to fine, for larger images;
* `style_scale=` - the size of the painting's strokes on the result;
* `style=[a, b], style_masks=` - a different painting in each region of the photo.

One section looks back at a detail *of* the paper rather than beyond it: `load_vgg19(pooling="avg")`, the
average pooling Gatys et al. used for their figures, against the max pooling VGG-19 was trained with.

You will write the masked Gram matrix that the last one is built on.
"""),
    ("code", r"""
import time

import torch

from stlib import course, measures, plots

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
size: the colours and large structures are settled cheaply on a quarter of the pixels and only refined at
the top. (`scales=3` adds a quarter-size stage, which pays off from about 512 px up.) Both runs below work
at a larger size than the rest of the notebook; the coarse-to-fine one spends half as many steps at full
size.
"""),
    ("code", r"""
BIG = course.image_size(cpu=320, gpu=768, fast=96)
single = stlib.stylize(photo, painting, size=BIG, steps=STEPS, model=vgg, precision="auto")
multi = stlib.stylize(photo, painting, size=BIG, scales=2, steps=[STEPS, max(1, STEPS // 2)], model=vgg,
                      precision="auto")
plots.show_images({f"one scale, {BIG} px, {STEPS} steps: {single.elapsed:.0f} s": single,
                   f"scales=2 ({' -> '.join(map(str, multi.settings['sizes']))} px, "
                   f"{' + '.join(map(str, multi.settings['steps']))} steps): {multi.elapsed:.0f} s": multi},
                  size=4.5)
"""),
    ("md", r"""
What to look for depends on the weights. With ImageNet weights the strokes come out larger, because the
coarse stage sees them at half size (Gatys et al., "Controlling Perceptual Factors", 2017). The offline
random weights have no strokes to enlarge, so what coarse-to-fine buys here is time: the half-size stage
does most of the work at a quarter of the cost per step, and the run ends at an objective (measured at full
size) as low as the single-scale run's, with half its full-size steps - compare the times in the titles.
The price is a softer picture: the upsampled start is blurred, and fine detail such as the face comes back
only over the full-size steps, so give the last scale enough of them.
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
# The claims above, measured: the objective at full size (the last scale's best), and the fine detail kept.
best_single = min(h["total"] for h in single.history)
best_multi = min(h["total"] for h in multi.history if h["size"] == multi.settings["sizes"][-1])
photo_big = stlib.load_image("astronaut", BIG)
detail = {"one scale": measures.ssim(single, photo_big), "scales=2": measures.ssim(multi, photo_big)}
if stlib.preset_for(vgg.weights_source).name == "offline":   # the text describes the offline weights
    course.claim("with the offline weights, coarse to fine ends at an objective at least as low as one scale "
                 "(within 5 %) with half the full-size steps, and keeps less of the photo's fine detail",
                 best_multi <= 1.05 * best_single and detail["scales=2"] < detail["one scale"],
                 f"best objective at {BIG} px: one scale {best_single:.3g}, scales=2 {best_multi:.3g}; SSIM to the "
                 "photo: " + ", ".join(f"{k} {v:.2f}" for k, v in detail.items()))
"""),
    ("md", r"""

## Brush-stroke size: `style_scale`

How large should the painting's strokes be on the result? The Gram matrices do not say: they are averages
over positions, so they describe the painting *at the size it is fed to the network*. `style_scale=` resizes
the painting relative to the output before its Gram matrices are taken (Johnson's *neural-style* calls it
`-style_scale`): at 2 the painting is fed twice as large as the result, so each of its strokes covers twice
as many pixels, and the network asks for strokes twice as large; at 0.5, half as large.

To see the size change, measure it: `stlib.measures.pattern_scale` is the distance (in pixels) over which the
picture stays correlated with itself - small for fine texture, large for big shapes. The bold shapes of
`stripes` make the effect easy to see and to measure.
"""),
    ("code", r"""

stripes = stlib.load_image("stripes", 2 * SIZE)   # loaded large enough for style_scale=2
by_scale = {scale: stlib.stylize(photo, stripes, style_scale=scale, size=SIZE, steps=STEPS, model=vgg,
                                 precision="auto") for scale in (0.5, 1.0, 2.0)}
widths = {scale: measures.pattern_scale(result.image) for scale, result in by_scale.items()}
plots.show_images({f"style_scale={scale:g}": result for scale, result in by_scale.items()}, size=3)
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
course.claim("the pattern grows with style_scale: each doubling makes it at least 10 % wider",
             widths[1.0] >= 1.1 * widths[0.5] and widths[2.0] >= 1.1 * widths[1.0],
             "pattern scale " + " / ".join(f"{w:.1f}" for w in widths.values()) + " px at style_scale 0.5 / 1 / 2")
"""),
    ("md", r"""
## Average vs max pooling (a detail of the paper)

VGG-19 was trained with max pooling. Gatys et al. (2016) swap it for average pooling when synthesising images:
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

## A different style in each region

Gatys, Ecker, Bethge, Hertzmann and Shechtman ("Controlling Perceptual Factors in Neural Style Transfer",
CVPR 2017) give every region of the photo its own painting. The recipe is **guided Gram matrices**:

1. a mask per region, $T_r$ (1 inside, 0 outside, soft values allowed), the size of the photo;
2. carried down to every style layer's resolution - at `relu3_1` a unit's mask value is the share of its
   4×4 block of pixels inside the region (`stlib.regions.layer_masks`);
3. the layer's features multiplied by the mask, $F_r = T_r \odot F$, and their Gram matrix
   $G_r = F_r F_r^\top / n_r$: the statistics of region *r* alone;
4. each region's Gram matrices matched to *its* painting's; the style loss averages over regions.

stlib divides by $n_r = C \sum_p T_r[p]^2$, the region's own size, so a region's Gram matrix is an
average over its own positions (a mask of ones gives exactly `gram_matrix`) and a small region is matched
as firmly as a large one. A bundled mask separates the evening sky of the rocket photo from the towers,
the rocket and the ground: the sky gets *The Starry Night*, the rest *The Scream*.
"""),
    ("code", r"""
rocket = stlib.load_image("rocket", SIZE)
masks = stlib.regions.load_masks("rocket_sky", size=tuple(rocket.shape[-2:]))   # (1, 2, H, W): sky, the rest
sky_painting, ground_painting = stlib.load_image("starry_night", SIZE), stlib.load_image("the_scream", SIZE)
REGION_STEPS = course.pick(60, fast=10)   # a few more in fast mode, so the regions have moved apart
regions = stlib.stylize(rocket, [sky_painting, ground_painting], style_masks="rocket_sky", size=SIZE,
                        steps=REGION_STEPS, model=vgg, precision="auto")
display(plots.show_images({"sky: The Starry Night": sky_painting, "rest: The Scream": ground_painting}, size=2.2))
plots.show_images({"photo": rocket, "mask: sky (white)": masks[:, :1].expand(1, 3, -1, -1),
                   "one painting per region": regions}, size=3.2)
"""),
    ("md", r"""
Did each region move towards its own painting? Measure it the way the loss does: the guided Gram matrix
of each region, compared with each painting's Gram matrix (relative distance, averaged over the five
style layers; smaller is closer), for the photo and for the result.
"""),
    ("code", r"""
with torch.no_grad():
    grams = {name: {n: stlib.gram_matrix(f) for n, f in stlib.extract_features(vgg, img, stlib.STYLE_LAYERS).items()}
             for name, img in {"The Starry Night": sky_painting, "The Scream": ground_painting}.items()}
    down = stlib.regions.layer_masks(masks, stlib.STYLE_LAYERS)

    def distances(image):
        # {region: {painting: mean over layers of |G_region - A_painting| / |A_painting|}}
        feats = stlib.extract_features(vgg, image, stlib.STYLE_LAYERS)
        return {region: {name: sum(float((stlib.regions.guided_gram_matrix(feats[n], down[n])[0, r] - g[n][0]).norm()
                                         / g[n][0].norm()) for n in stlib.STYLE_LAYERS) / 5
                         for name, g in grams.items()}
                for r, region in enumerate(("sky", "rest"))}

    before, after = distances(rocket), distances(regions.image)
for region, own, other in (("sky", "The Starry Night", "The Scream"), ("rest", "The Scream", "The Starry Night")):
    print(f"{region:>4}: to {own} {before[region][own]:.2f} -> {after[region][own]:.2f}, "
          f"to {other} {before[region][other]:.2f} -> {after[region][other]:.2f}")
    assert after[region][own] - before[region][own] < after[region][other] - before[region][other], \
        f"the {region} should move towards {own} more than towards {other}"
"""),
    ("md", r"""
Each region moved towards its own painting, more than towards the other: the guided Gram matrices keep the
two styles apart.

### Exercise · The masked Gram matrix

Write `masked_gram(features, mask)`: features (B, C, H, W) of one layer, a soft mask (1, 1, H, W) already
at the layer's size. Multiply the features by the mask, take the Gram matrix of the result and divide by
C times the region's mass, `mask.pow(2).sum()` (why squared? each product $F_{ip}F_{jp}$ now carries the
mask twice). The check compares with `stlib.regions.guided_gram_matrix`.
"""),
    ("code", r'''
def masked_gram(features, mask):
    """Gram matrices (B, C, C) of the features (B, C, H, W) inside the soft mask (1, 1, H, W)."""
    raise NotImplementedError  # your code here
'''),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
stlib.checks.check_masked_gram(masked_gram)
"""),
    ("solution", "masked_gram"),
    ("md", r"""
The same from the command line: `stlib transfer rocket starry_night --region-style the_scream --masks
rocket_sky -o out.png` (any greyscale image works as a mask: white for the first style, black for the
second).

## Where to go from here

* Try your own photos and paintings: every function takes a path or URL (`stlib.load_image`).
* The command line does the same outside Jupyter: `stlib transfer photo.jpg painting.jpg -o out.png`.
* Ideas that build on this method: feed-forward networks trained to stylise in one pass (Johnson, Alahi and
  Fei-Fei, 2016), instance normalisation (Ulyanov et al., 2016), arbitrary styles in real time with
  adaptive instance normalisation (Huang and Belongie, 2017), and the rest of "Controlling Perceptual
  Factors" (Gatys et al., 2017): control over colour and over the scale of the strokes.

**Next:** the capstone - the whole method, written by you.
"""),
]
