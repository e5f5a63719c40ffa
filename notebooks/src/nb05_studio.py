"""Source of notebooks/05_studio.ipynb (built by notebooks/make_notebooks.py)."""

CELLS = [
    ("md", r"""
# 05 · The live studio

Everything so far ran one `stylize` call at a time: choose weights, wait, look. Here the weights become
sliders, and moving one **while the optimisation runs** steers it: the image keeps evolving, now towards
the new objective. It is the quickest way to build an intuition for what the content/style ratio, each
style layer and the TV term actually do.
"""),
    ("md", r"""
## Open the studio

`Studio` loads VGG-19 once and keeps it. On a laptop CPU start small (256 px); on a GPU 512 px is fine.
Press **Run**, then move any slider: the run *re-targets* within about a second. **Stop** keeps the
picture. With the offline random weights (no internet) the results look different from the paper,
but every control behaves the same way.
"""),
    ("code", r"""
from stlib import course
from stlib.studio import Studio

studio = Studio("astronaut", "swirls", size=course.pick(256, fast=128), steps=course.pick(200, fast=40))
studio
"""),
    ("md", r"""
### Things to try

1. Run, then press the right arrow twice on **style weight** (click its handle first): each press is half a
   decade, so two presses make the style term ten times stronger. What happens to the brush strokes? Two left?
2. **Pin** a picture you like, change something, and compare the live picture with the pinned one.
3. Pick a **preset**: *style wins* and *content wins* are the two ends of the ratio; *paper-like* starts from
   white noise with average pooling, as Gatys et al. did; *tutorial-like* is PyTorch's tutorial. **Reset**
   brings back where you started.
4. Untick every style layer except `relu1_1`, then only `relu5_1`. Which one carries colour, which one
   larger shapes?
5. Set the **TV weight** high (100+). Why does the picture turn into flat patches?
6. Tick **keep the photo's colours**: only brightness is styled, colours come from the photo.
7. **Upload** your own photo or painting (PNG or JPEG). A big one is shrunk to 1024 px when loaded.
8. Switch the optimizer to **Adam** mid-run and watch the loss plot: Adam is steadier per step but slower
   to converge than L-BFGS.

The line under the Run controls shows `stlib.estimate`'s prediction of time and memory; a run that would
take more than a minute warns you first, one that would not fit in memory is refused.
"""),
    ("md", r"""
## How a slider can steer a running optimisation

* The optimisation runs in a **worker thread**; PyTorch releases Python's lock while it computes, so the
  notebook keeps answering the browser.
* A slider change only bumps a *settings generation* and raises a flag. Hooks on the network's layers see
  the flag and end the current step early; the worker then calls `stylize` again with the newest settings
  and `init=<the current image>` (a **warm start**), so nothing already painted is lost.
* Changes are **coalesced**: ten quick clicks cause one or two restarts, never a queue of ten runs.
* On a slow CPU the first few steps after a change run at a smaller size (coarse-to-fine, as
  `stylize(..., scales=...)`), so the first new preview comes quickly; then it sharpens at full size. Those
  steps count towards the **steps** slider: 200 steps means 200.

The code is in `stlib/studio/`, one file per job: `settings.py`, `controls.py`, `worker.py`, `sweep.py`.
Everything the buttons do is also available from code:
"""),
    ("code", r"""
studio.steps.value = course.pick(60, fast=10)
studio.style_weight.value = studio.style_weight.value * 10
studio.run()  # returns at once: the worker thread does the work
studio.wait()  # block until it is done (only for this demonstration)
print(f"{studio.result.steps} steps, {studio.result.seconds_per_step:.2f} s per step")
studio.result
"""),
    ("md", r"""
## Sweeps for the lecture

A sweep precomputes a small grid - style/content ratios, TV weights, start images, optimisers, pooling, or
style layers added one at a time - so that in class the **show cell** slider on the *Sweep* tab flips
between the cached results instantly. The ratio sweep is centred where the picture changes: the studio
first measures, on your two images, the style loss of the photo and what losing the photo would cost in
content loss, and spans the weights around their balance (a fixed range around the slider often lands
where every cell already looks the same). `save_sweep` writes the grid as one titled PNG for the slides.
"""),
    ("code", r"""
studio.sweep("ratio", course.pick(5, fast=3), steps=course.pick(40, fast=5), size=course.pick(160, fast=96))
grid = studio.save_sweep("out/ratio_sweep.png")

from IPython.display import Image

Image(filename=str(grid))
"""),
    ("md", r"""
## In front of a class

`Studio(..., layout="projector")` fits a 1280×720 projector: a 600 px picture beside the controls, the loss
plot in 12 pt type. `make present` serves exactly that as a web page **without code** (Voilà), and
`docs/lecture.md` is a 50-minute path through the course.

### Exercise

Make a layer sweep (`studio.sweep("layers")`) for a painting you uploaded. In which cell do the
textures first look like the painting's, and why does adding deeper layers change the scale of the
patterns? (Hint: `stlib.layers.receptive_field("relu3_1")`.)
"""),
]
