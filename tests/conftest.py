"""Shared test set-up: offline seeded weights, fast mode, one VGG-19 for the whole session."""

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
