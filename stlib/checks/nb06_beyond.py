"""Check for notebook 06 (beyond the paper): the Gram matrix of the features inside a region's soft mask."""

from __future__ import annotations

from typing import Callable

import torch

from ..gram import gram_matrix
from ..regions import guided_gram_matrix
from .framework import (
    CheckResult,
    as_tensor,
    call_student,
    close,
    finish,
    ratio,
    seeded_randn,
    wrong,
)


# ------------------------------------------------------------------------------------------------ masked gram
def check_masked_gram(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """Check ``fn(features (B, C, H, W), mask (1, 1, H, W)) -> (B, C, C)`` against one region of
    ``stlib.regions.guided_gram_matrix``."""

    def run() -> str:
        for i, (b, c, h, w) in enumerate([(1, 4, 5, 6), (2, 3, 4, 4)]):
            feats = seeded_randn(b, c, h, w, seed=160 + i).relu()
            mask = torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(170 + i))
            got = as_tensor(call_student(fn, "your masked_gram", feats.clone(), mask.clone()), "masked_gram")
            expected = guided_gram_matrix(feats, mask)[:, 0]
            if got.shape != expected.shape:
                if got.shape == (b, 1, c, c):
                    got = got[:, 0]
                else:
                    raise wrong(f"for features {(b, c, h, w)} it returned shape {tuple(got.shape)}; one Gram "
                                f"matrix per image: {tuple(expected.shape)}.")
            if close(got, expected):
                continue
            masked = feats * mask
            mass_sq, mass = float(mask.pow(2).sum()), float(mask.sum())
            if close(got, gram_matrix(masked)):
                raise wrong(f"you divided by C*H*W, the size of the whole image. Divide by C times the region's "
                            f"mass, sum(mask ** 2) (here {mass_sq:.3g} of {h * w} positions), so a region's Gram "
                            "is an average over its own positions.")
            if close(got, gram_matrix(masked, normalize=False)):
                raise wrong("no normalisation: divide the sum by C * sum(mask ** 2).")
            if close(got, gram_matrix(masked, normalize=False) / mass_sq):
                raise wrong(f"you divided by sum(mask ** 2) but not by C: your values are C = {c} times too large. "
                            "Divide by C * sum(mask ** 2), as stlib.gram_matrix divides by C*H*W.")
            if close(got, gram_matrix(masked, normalize=False) / mass):
                raise wrong("you divided by sum(mask) only: divide by C * sum(mask ** 2) - C for the channels, and "
                            "the mask squared because each product carries it twice (mask * F times mask * F).")
            if close(got, gram_matrix(masked, normalize=False) / (c * mass)):
                raise wrong("you divided by C * sum(mask); the masked features carry the mask twice in each "
                            "product (mask * F times mask * F), so divide by C * sum(mask ** 2).")
            flat, weights = feats.reshape(b, c, -1), mask.reshape(1, 1, -1)
            if close(got, (flat * weights) @ flat.transpose(1, 2) / (c * mass)):
                raise wrong("you masked only one side of the product. Mask the features first, Fm = features * "
                            "mask, then Fm Fm^T / (C * sum(mask ** 2)).")
            if close(got, gram_matrix(feats)):
                raise wrong("the mask was not used: multiply the features by the mask before the Gram matrix.")
            k = ratio(got, expected)
            if k is not None:
                raise wrong(f"for features {(b, c, h, w)} your values are {k:.4g} times stlib's: the products "
                            "are right but the normalisation is not. Divide by C * sum(mask ** 2).")
            raise wrong(f"for features {(b, c, h, w)} the values differ from stlib.regions.guided_gram_matrix "
                        f"(largest difference {float((got - expected).abs().max()):.3g}).")
        return ("masked_gram matches stlib.regions.guided_gram_matrix for one region. stylize(style_masks=...) "
                "computes one per region and layer.")

    return finish("masked_gram", run)


#: One possible solution of each exercise (shown by ``stlib.checks.solution`` and hidden in the notebooks).
SOLUTIONS: dict[str, str] = {
    "masked_gram": '''
def masked_gram(features, mask):
    """Gram matrices (B, C, C) of the features (B, C, H, W) inside a soft mask (1, 1, H, W)."""
    b, c, h, w = features.shape
    masked = (features * mask).reshape(b, c, h * w)      # the features inside the region
    gram = masked @ masked.transpose(1, 2)               # (B, C, C)
    return gram / (c * mask.pow(2).sum())                # an average over the region's own positions
''',
}
