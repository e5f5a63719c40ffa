"""Shared test set-up: offline seeded weights, fast mode, one VGG-19 for the whole session.

The rule for float tolerances (every test must pass at any thread count: OMP_NUM_THREADS=1, 2, 4):

- One evaluation in float32 (a loss, a gradient, a Gram matrix) compared with an oracle that computes the
  same thing another way: ``rel=1e-5`` on scalars, 1e-4 on the relative norm of a tensor's difference.
  The thread count changes the order of float32 sums, which moves results by ~1e-7 relative, no more.
- bf16/fp16 against float32: a tolerance derived from the format (bf16 keeps 8 bits: ~4e-3 relative per
  value, ~1e-2 on a sum of many), written next to the assert with where it comes from.
- Trajectories (several optimiser steps) amplify rounding: compare only as many steps as were measured to
  agree at 1, 2 and 4 threads, and say in the docstring how that was measured. Never widen a tolerance to
  make a trajectory pass; shorten the trajectory or compare the evaluations at the same points instead.
- Wall-clock times are never asserted (benchmarks/ measures them).
"""

import os

# Before stlib is imported anywhere: never touch the network, never look for ImageNet weights.
os.environ["STLIB_WEIGHTS"] = "random"
os.environ["STLIB_OFFLINE"] = "1"
os.environ.setdefault("STLIB_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# OpenMP worker threads that spin while they wait are ~3x slower on a machine whose cores other jobs share
# (measured: the core suite 171 s -> 55 s on 2 busy cores). Read once, when torch loads: keep it above `import torch`.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="session")
def vgg():
    """The seeded offline VGG-19 (features only), loaded once per test session."""
    import stlib

    return stlib.load_vgg19("random")


@pytest.fixture
def tiny_pair():
    """A 64x48 content image and a 40x40 style image with structure (not constant), as 1x3xHxW tensors."""
    gen = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 64), indexing="ij")
    content = torch.stack([xx, yy, (xx * yy)]).unsqueeze(0)
    style = torch.rand(1, 3, 40, 40, generator=gen)
    return content, style
