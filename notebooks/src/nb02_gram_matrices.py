"""Source of notebooks/02_gram_matrices.ipynb (built by notebooks/make_notebooks.py)."""

CELLS = [
    ("md", r"""
# 02 · Gram matrices: a representation of style

A painting's style - its palette, its strokes, its textures - is the same in every corner of the canvas,
while its content is different in every corner. Gatys et al. capture style with a statistic that forgets
*where* things are and keeps *which features occur together*: the **Gram matrix** of a layer's feature
maps. This notebook builds it by hand, shows that it really ignores layout, and then reconstructs a
painting's style from Gram matrices alone.

You will write the Gram matrix and the style loss of one layer.
"""),
    ("code", r"""
import torch
import torch.nn.functional as F

from stlib import course, measures, plots

vgg = course.load_model()
SIZE = course.image_size()
painting = stlib.load_image("swirls", SIZE)
photo = stlib.load_image("chelsea", SIZE)
"""),
    ("md", r"""
## The Gram matrix by hand

Take a layer's output for one image: C feature maps of H×W positions. Flatten each map into a row, giving
a matrix F of shape C × (H·W). The Gram matrix is $G = F F^\top$, of shape C × C:

$$G_{ij} = \sum_{p=1}^{H\cdot W} F_{ip}\,F_{jp}$$

Entry (i, j) adds up, over all positions, how strongly channels *i* and *j* fire **at the same place**.
The sum runs over positions, so their order does not matter. Here is a toy feature map with C = 2
channels on a 2×3 grid:
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
toy = torch.tensor([[[[1.0, 0.0, 2.0],
                      [0.0, 1.0, 0.0]],          # channel 0
                     [[0.0, 3.0, 1.0],
                      [1.0, 0.0, 0.0]]]])        # channel 1          -> shape (B=1, C=2, H=2, W=3)
flat = toy.reshape(1, 2, 6)                      # (B, C, H*W): one row per channel
gram = flat @ flat.transpose(1, 2)               # (B, C, C)
print("F =\n", flat[0])
print("G = F F^T =\n", gram[0])
print("G[0, 1] by hand: 1*0 + 0*3 + 2*1 + 0*1 + 1*0 + 0*0 =", 1 * 0 + 0 * 3 + 2 * 1 + 0 * 1 + 1 * 0 + 0 * 0)
print("stlib.gram_matrix(toy, normalize=False) =\n", stlib.gram_matrix(toy, normalize=False)[0])
print("stlib.gram_matrix(toy) divides by C*H*W = 12:\n", stlib.gram_matrix(toy)[0])
"""),
    ("md", r"""
The diagonal holds each channel's total energy (channel 1 fires more: 11 vs 6); the off-diagonal entry
says the two channels overlap a little (2). Raw sums grow with the image, so stlib divides by
C·H·W by default - the convention of PyTorch's style-transfer tutorial, whose weights stlib reuses.
(Notebook 03 compares the conventions.)

### Exercise 1 · Write `gram_matrix`

Input: features of shape (B, C, H, W). Output: (B, C, C), one Gram matrix **per image**, divided by
C·H·W. Watch out for the classic bugs: reshaping to (B·C, H·W) correlates channels of *different* images;
reshaping (B, C, H, W) straight into (B, H·W, C) scrambles channels and positions. The check tells you
which one you hit.
"""),
    ("code", r'''
def gram_matrix(features):
    """(B, C, H, W) -> (B, C, C): channel-by-channel sums of products over positions, divided by C*H*W."""
    raise NotImplementedError  # your code here
'''),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
stlib.checks.check_gram(gram_matrix)
"""),
    ("solution", "gram"),
    ("md", r"""
## What Gram matrices look like

From here on we use `stlib.gram_matrix`. Below, the first 32×32 corner of the Gram matrices of the
painting and of the photo at `relu1_1` (top) and `relu3_1` (bottom), each pair on **one colour scale**, so
brighter means larger. Entry (i, i) on the diagonal is channel i's energy. A channel that fires strongly
everywhere also makes large products with every other channel, so it lights up its whole row and column:
the maps are crossed by **bright stripes** rather than a bright diagonal. Off the stripes, bright cells
are pairs of channels that fire *together* - a blue area that is also striped, say. The painting and the
photo light up different channels, and by different amounts: that difference is what the style loss
measures.
"""),
    ("code", r"""
with torch.no_grad():
    feats_painting = stlib.extract_features(vgg, painting, stlib.STYLE_LAYERS)
    feats_photo = stlib.extract_features(vgg, photo, stlib.STYLE_LAYERS)
for layer in ("relu1_1", "relu3_1"):      # in a loop, a figure only appears when displayed explicitly
    display(plots.show_gram({f"painting, {layer}": stlib.gram_matrix(feats_painting[layer]),
                     f"photo, {layer}": stlib.gram_matrix(feats_photo[layer])}, channels=32, size=2.8,
                    shared_scale=True))
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
# The claims above, measured: stripes (whole rows brighter than others), not a bright diagonal, and the
# painting/photo difference.
for layer in ("relu1_1", "relu3_1"):
    gp, gq = stlib.gram_matrix(feats_painting[layer])[0], stlib.gram_matrix(feats_photo[layer])[0]
    rows = gp.mean(dim=1)
    stripe = float(rows.max() / rows.median())
    diagonal_peaks = float((gp.diagonal() >= gp.max(dim=1).values).float().mean())
    difference = float((gp - gq).norm() / gq.norm())
    course.claim(f"the {layer} maps are crossed by stripes rather than a bright diagonal, and the painting's "
                 "Gram matrix differs from the photo's",
                 stripe > 3 and diagonal_peaks <= 0.9 and difference > 0.2,
                 f"brightest row {stripe:.1f}x the median row, diagonal is the row's peak in {100 * diagonal_peaks:.0f} % "
                 f"of rows, painting vs photo {100 * difference:.0f} % apart")
"""),
    ("md", r"""
## Style is not layout

**Exactly:** shuffle the *positions* of a feature map - any permutation of the H·W columns of F - and the
Gram matrix does not change at all, because it is a sum over positions.
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
f = feats_painting["relu2_1"]                                    # (1, C, H, W)
b, c, h, w = f.shape
perm = torch.randperm(h * w, generator=torch.Generator().manual_seed(0))
f_shuffled = f.reshape(b, c, h * w)[:, :, perm].reshape(b, c, h, w)
print("feature maps identical:  ", torch.equal(f, f_shuffled))
print("Gram matrices identical: ", torch.allclose(stlib.gram_matrix(f), stlib.gram_matrix(f_shuffled), rtol=1e-4))
"""),
    ("md", r"""
**Visually:** cut the painting into tiles and shuffle them. The picture is rearranged, yet its Gram
matrices barely move - only the features that straddle a tile border change. A different picture (the
photo) has Gram matrices that are far away. The table gives the relative distance
$\lVert G - G_\text{painting}\rVert / \lVert G_\text{painting}\rVert$ per layer.
"""),
    ("code", r'''
def shuffle_tiles(image, grid=4, seed=0):
    """Cut an image (1, 3, H, W) into grid x grid tiles and put them back in a random order."""
    _, c, h, w = image.shape
    th, tw = h // grid, w // grid
    image = image[..., : th * grid, : tw * grid]
    tiles = image.reshape(1, c, grid, th, grid, tw).permute(0, 2, 4, 1, 3, 5).reshape(grid * grid, c, th, tw)
    order = torch.randperm(grid * grid, generator=torch.Generator().manual_seed(seed))
    return tiles[order].reshape(grid, grid, c, th, tw).permute(2, 0, 3, 1, 4).reshape(1, c, grid * th, grid * tw)


shuffled = shuffle_tiles(painting)
candidates = {"shuffled painting": shuffled, "photo": stlib.resize(photo, tuple(shuffled.shape[-2:]))}
reference = stlib.resize(painting, tuple(shuffled.shape[-2:]))
with torch.no_grad():
    ref_grams = {k: stlib.gram_matrix(v) for k, v in stlib.extract_features(vgg, reference, stlib.STYLE_LAYERS).items()}
    print(f"{'relative Gram distance to the painting':<40}" + "".join(f"{n:>9}" for n in stlib.STYLE_LAYERS))
    for label, image in candidates.items():
        grams = {k: stlib.gram_matrix(v) for k, v in stlib.extract_features(vgg, image, stlib.STYLE_LAYERS).items()}
        dists = [float((grams[n] - ref_grams[n]).norm() / ref_grams[n].norm()) for n in stlib.STYLE_LAYERS]
        print(f"{label:<40}" + "".join(f"{d:>9.3f}" for d in dists))
plots.show_images({"painting": reference, "tiles shuffled": shuffled, "photo": candidates["photo"]}, size=2.8)
'''),
    ("md", r"""
The shuffled painting stays close in the first layers, where a unit sees a few pixels and almost none
straddle a tile border. The distance grows with depth because deeper units see more of the image
(notebook 01): at `relu5_1` one unit sees more than a whole tile, so the shuffle starts to show. The photo
is far away at every layer. For style transfer this
is the whole point: matching Gram matrices copies *what the painting is made of*, and leaves the
arrangement free for the photo's content.

### Exercise 2 · The style loss of one layer

The style loss of layer *l* compares the Gram matrix of the image being painted with the painting's:
the mean squared difference of the two C×C matrices,

$$E_l = \frac{1}{C^2}\sum_{i,j}\big(G_{ij} - A_{ij}\big)^2 .$$

Write `style_layer_loss(features, target_gram)`: features (B, C, H, W) of the image being painted,
`target_gram` (1, C, C) of the painting. Use `stlib.gram_matrix`.
"""),
    ("code", r'''
def style_layer_loss(features, target_gram):
    """Mean squared difference between the Gram matrix of features (B, C, H, W) and target_gram (1, C, C)."""
    raise NotImplementedError  # your code here
'''),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
stlib.checks.check_style_layer_loss(style_layer_loss)
"""),
    ("solution", "style_layer_loss"),
    ("md", r"""
## Style from noise, one layer set at a time

The paper's Fig. 1 (top row) paints from white noise with the style loss alone (`content_weight=0`),
matching Gram matrices on a growing set of layers: `relu1_1`, then `relu1_1 + relu2_1`, … up to all five.
Per-layer weights come from stlib's preset for the loaded weights (`stlib.preset_for`, see notebook 03);
as in the paper's figures the network uses average pooling.
"""),
    ("code", r"""
vgg_avg = course.load_model(pooling="avg", note=False)
preset = stlib.preset_for(vgg.weights_source)
STYLE_STEPS = course.pick(150, fast=5)
textures = {}
for k in range(1, 6):
    layers = stlib.STYLE_LAYERS[:k]
    textures[f"to {layers[-1]}"] = stlib.stylize(
        photo, painting, content_weight=0, style_layers={n: preset.style_layers[n] for n in layers},
        tv_weight=0, init="noise", size=SIZE, steps=STYLE_STEPS, model=vgg_avg, precision="auto")
plots.show_images({"painting": painting, **textures}, ncols=6, size=2.3)
"""),
    ("md", r"""
**How to read the row.** Each picture matches the Gram matrices of every style layer from `relu1_1` up to
the one named. `relu1_1` alone reproduces the palette in small dots. Deeper layers add structure at the
scale of their receptive fields: from `relu2_1` on, the dots merge into blobs closer to the painting's
size. None of the images copies the painting's layout - there is no content term - they are new pieces of
the same texture. (With ImageNet weights `relu4_1` and `relu5_1` keep adding larger strokes; with the
offline random weights the pattern stops growing after `relu3_1`, because random deep filters describe
little structure.)

The cell below checks both halves of this on the row: each run matched its Gram matrices (its style
loss fell by at least 95 %), and the **pattern size** grew - the distance in pixels over which the
picture's brightness stays correlated (`stlib.measures.pattern_scale`; 1-2 px is grain, more is blobs).
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
# The claims of the row, measured: every style loss fell by >= 95 %, and the pattern grows with depth.
fell = {name: 1 - min(h["style"] for h in r.history) / r.history[0]["style"] for name, r in textures.items()}
scale = {name: measures.pattern_scale(r) for name, r in textures.items()}
first, *deeper = textures
course.claim("every panel's style loss fell by at least 95 %",
             all(f >= 0.95 for f in fell.values()), ", ".join(f"{n}: -{100 * f:.1f} %" for n, f in fell.items()))
course.claim("the pattern grows with depth: every panel with deeper layers has a pattern at least 1.5x as large "
             "as relu1_1's alone",
             all(scale[n] >= 1.5 * scale[first] for n in deeper),
             "pattern size " + ", ".join(f"{n}: {s:.1f} px" for n, s in scale.items()))
"""),
    ("md", r"""
**Next:** putting content and style together, and choosing the weights between them.
"""),
]
