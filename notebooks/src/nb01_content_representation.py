"""Source of notebooks/01_content_representation.ipynb (built by notebooks/make_notebooks.py)."""

CELLS = [
    ("md", r"""
# 01 · Content representation: what a CNN keeps of a photo

Style transfer needs a precise meaning for "the same content". Gatys et al. take it from a network:
two images have the same content when a deep layer of VGG-19 responds to them in the same way. This
notebook looks inside VGG-19 - its layers, what they respond to, how much of the image each unit sees -
and then asks the network's own question: *which images give exactly these activations?*

You will write two pieces yourself: the receptive field of a layer, and the content loss.
"""),
    ("code", r"""
import torch
import torch.nn.functional as F

from stlib import course, measures, plots

vgg = course.load_model()
SIZE = course.image_size()              # 192 px on a CPU, 384 on a GPU, 64 in fast mode
photo = stlib.load_image("chelsea", SIZE)
"""),
    ("md", r"""
## A convolution and a pooling, by hand

A convolutional layer slides small filters over the image; each output value is a weighted sum of a 3×3
neighbourhood. Below, two hand-made 3×3 filters find vertical and horizontal edges of a grey photo. A 2×2
max-pooling then keeps the strongest response in every 2×2 block, halving width and height (drawn at the
same pixel scale, the pooled map is half as wide and half as tall). VGG-19 is 16
such convolutions (each followed by a ReLU, `max(0, x)`) with a pooling after every block - except that
its 64 … 512 filters per layer were *learned* on ImageNet instead of written by hand.
"""),
    ("code", r"""
grey = photo.mean(dim=1, keepdim=True)                                   # (1, 1, H, W)
sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
filters = torch.stack([sobel, sobel.T]).unsqueeze(1)                     # (2 filters, 1 channel, 3, 3)
edges = F.conv2d(grey, filters, padding=1).relu()                        # (1, 2, H, W): one map per filter
pooled = F.max_pool2d(edges, kernel_size=2)                              # (1, 2, H/2, W/2)
plots.show_images({"grey photo": grey,
                   "vertical edges": edges[:, :1] / edges.max(),
                   "horizontal edges": edges[:, 1:] / edges.max(),
                   "2×2 max-pooled": pooled[:, :1] / pooled.max()}, size=2.6, true_size=True)
"""),
    ("md", r"""
## VGG-19, layer by layer

stlib names layers the way the paper does: `conv3_2` is the 2nd convolution of block 3, `relu3_2` the ReLU
right after it, `pool3` the pooling that ends block 3. The table lists, for a 224-pixel-wide photo, what
each ReLU and pooling layer outputs - channels × height × width - its stride (how many pixels one step
in the layer is) and its **receptive field**: the side of the square of input pixels that can influence
one of its units. Deeper layers have fewer positions, more channels, and see more of the image.
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
photo_224 = stlib.load_image("chelsea", 224)      # fixed size, so the table is the same on every machine
relu_and_pool = [name for name in stlib.VGG19_LAYERS if not name.startswith("conv")]
print(plots.format_layer_table(plots.layer_table(vgg, photo_224, relu_and_pool)))
"""),
    ("code", r"""
plots.plot_layer_table(vgg, photo_224)
"""),
    ("code", r"""
plots.show_receptive_fields(photo_224)
"""),
    ("md", r"""
### Exercise 1 · The receptive field

Write `receptive_field(layer)`. Walk through `stlib.VGG19_LAYERS` from the input up to `layer`, keeping
two numbers: `size`, the receptive field so far (one pixel sees itself: start at 1), and `jump`, the
distance in input pixels between two neighbouring units of the current layer (start at 1).

* a 3×3 convolution adds one unit on each side: `size += 2 * jump`;
* a ReLU changes nothing;
* a 2×2 pooling with stride 2 adds one unit (`size += jump`) and then doubles `jump`.

`stlib.layer_index(layer)` gives a layer's position in the list.
"""),
    ("code", r'''
def receptive_field(layer):
    """Side of the square of input pixels that one unit of `layer` sees."""
    raise NotImplementedError  # your code here
'''),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
stlib.checks.check_receptive_field(receptive_field)
"""),
    ("solution", "receptive_field"),
    ("md", r"""
## What the layers respond to

Each layer turns the image into a stack of *feature maps*, one per channel. Below are the 8 most active
maps of the first ReLU of each block. Early maps are still pictures (edges and colour blobs at full
resolution); later ones are coarse grids of "something of kind *k* is here" signals.
"""),
    ("code", r"""
depths = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
with torch.no_grad():
    features = stlib.extract_features(vgg, photo, depths)         # {layer: (1, C, H, W)}
plots.show_feature_maps(features, n=8)
"""),
    ("md", r"""
## Content: reconstruct the photo from one layer

If the activations of a layer are a good description of *content*, an image with the same activations
should look like the photo. Gatys et al. test this directly (their Fig. 1, bottom row): start from white
noise and change the pixels until the layer's activations match the photo's. The mismatch they minimise
is the **content loss**, the squared difference of two feature maps averaged over all their numbers:

$$\mathcal{L}_\text{content}(x, p) = \frac{1}{N}\sum_{c,i,j}\big(F_{c,i,j}(x) - F_{c,i,j}(p)\big)^2$$

(The paper writes $\tfrac12\sum$; the mean differs only by a constant and does not grow with the image.)

### Exercise 2 · The content loss

Write `content_loss(features, target)` for two tensors of the same shape (B, C, H, W); return one number
(a 0-dimensional tensor) through which gradients can flow.
"""),
    ("code", r'''
def content_loss(features, target):
    """Mean squared difference of two feature maps (B, C, H, W) -> a scalar tensor."""
    raise NotImplementedError  # your code here
'''),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
stlib.checks.check_content_loss(content_loss)
"""),
    ("solution", "content_loss"),
    ("md", r"""
From here on the notebook uses `stlib.content_loss`. `stylize` with `style_weight=0` and a single content
layer minimises exactly this loss, from white noise (`init="noise"`). Like the paper's figures, these
reconstructions use **average pooling** (`pooling="avg"`), which passes gradients to every pixel of a
2×2 block instead of only the largest one.
"""),
    ("code", r"""
vgg_avg = course.load_model(pooling="avg", note=False)
RECON_STEPS = course.pick(150, fast=5)
reconstructions = {}
for layer in ["relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"]:
    reconstructions[layer] = stlib.stylize(
        photo, "swirls", style_weight=0, content_layers=[layer], tv_weight=0, init="noise",
        size=SIZE, steps=RECON_STEPS, model=vgg_avg, precision="auto")
plots.show_images({"photo": photo, **reconstructions}, ncols=6, size=2.3)
"""),
    ("md", r"""
**How to read the row.** The first layers hold the photo almost pixel for pixel: any image that matches
`relu1_2` *is* the photo. Going deeper, more and more images give the same activations, and the
reconstruction keeps only what the layer cares about: `relu3_2` still looks like the photo at this size
(only the similarity score below notices the fine detail it lost); `relu4_2` keeps the layout - the cat's
head, eyes and nose where they were - under a veil of the starting noise; `relu5_2` keeps little more than
where the light and dark regions lie.

Two numbers make this precise. The **structural similarity** (SSIM, Wang et al. 2004; 1 = identical)
compares the pictures pixel neighbourhood by pixel neighbourhood; the **layout similarity** compares only
where the light and dark regions lie (the correlation of the two pictures' brightness averaged over a
coarse grid; `stlib.measures`). The cell below measures both on the row above and checks the text's
claim.

* **With ImageNet weights** (the paper's figure) the layout and the objects survive up to `relu4_2` and
  `relu5_2` while exact colours and fine texture dissolve - the network keeps *what* is where, not the
  pixels. That is why `relu4_2` is the default content layer: it fixes the scene, yet leaves the surface
  free for a style.
* **With the offline random weights** the row falls off in the same order, only sooner and differently:
  `relu4_2` keeps the layout and the eyes and nose, `relu5_2` only where the light and dark regions lie,
  under heavy noise. Random filters never learned which
  structures matter, so a deep layer keeps what it cannot help keeping - local brightness and edge
  strength, passed down through four blocks of random mixtures (He, Wang & Hopcroft, NeurIPS 2016, show
  that random networks can be inverted this way) - and it does not notice fine noise, which stays. Trained
  filters keep *objects* instead, which is why their `relu5_2` still shows the cat.
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
# The claim of the row, measured: layout kept down to relu4_2, similarity to the photo falling with depth.
quality = {layer: measures.ssim(r, photo) for layer, r in reconstructions.items()}
layout = {layer: measures.layout_similarity(r, photo) for layer, r in reconstructions.items()}
names = list(reconstructions)
course.claim("every reconstruction down to relu4_2 keeps the photo's layout (layout similarity at least 0.9), "
             "and the structural similarity to the photo falls with each layer deeper",
             all(layout[n] >= 0.9 for n in names[:names.index("relu4_2") + 1])
             and all(quality[a] > quality[b] for a, b in zip(names, names[1:])),
             "layout " + ", ".join(f"{n} {layout[n]:.2f}" for n in names)
             + "; SSIM " + ", ".join(f"{n} {quality[n]:.2f}" for n in names))
"""),
    ("md", r"""
Try a different photo (`"rocket"`, `"coffee"`, or your own file) or more steps (`RECON_STEPS = 400`).
"""),
    ("code", r"""
plots.plot_losses(reconstructions, key="content")
"""),
    ("md", r"""
How to read the plot: each curve is one reconstruction's content loss, step by step, on a log scale. A
filled **dot** marks the step whose image the run returned - its lowest loss; **hollow circles** are trial
steps the optimiser undid because they raised the loss (notebook 04 explains why). A curve that **ends
early** (try more steps) belongs to a run that stopped by itself: its best loss had stopped improving, so
more steps would change nothing (the run's `.stopped` says why and when).

The curves fall at very different speeds and depths: the shallower the layer, the further its loss falls.
The shallowest is inverted almost exactly within a few dozen steps and then stays flat, while the deepest
is still creeping down when the budget ends.
"""),
    ("code", r"""
# NBVAL_CHECK_OUTPUT
# The claim above, measured: how far each loss fell, when the shallowest flattened, when the deepest peaked.
losses = {layer: [h["content"] for h in r.history] for layer, r in reconstructions.items()}
fell = {layer: min(v) / v[0] for layer, v in losses.items()}
flat_at = next(i for i, v in enumerate(losses["relu1_2"], start=1) if v <= 2 * min(losses["relu1_2"]))
deep_best = 1 + losses["relu5_2"].index(min(losses["relu5_2"]))
ratios = list(fell.values())
course.claim("the shallower the layer, the further its loss falls; the shallowest is within 2x of its lowest loss "
             "within 50 steps, the deepest reaches its lowest only in the last fifth of its steps",
             all(a < b for a, b in zip(ratios, ratios[1:])) and flat_at <= 50
             and deep_best > 0.8 * len(losses["relu5_2"]),
             "lowest / first loss: " + ", ".join(f"{k} {v:.1e}" for k, v in fell.items())
             + f"; relu1_2 within 2x of its lowest at step {flat_at}; relu5_2 lowest at step {deep_best} of "
             f"{len(losses['relu5_2'])}")
"""),
    ("md", r"""
**Next:** the other half of the method - a representation of *style* that ignores where
things are.
"""),
]
