"""Instant checks for the course exercises: your function against stlib's reference on seeded inputs.

    import stlib.checks
    def gram_matrix(features): ...          # your attempt
    stlib.checks.check_gram(gram_matrix)     # prints "✓ ..." or what is wrong, e.g. a missing normalisation
    stlib.checks.solution("gram")            # prints one possible solution

A check never raises: an unfinished stub (``raise NotImplementedError`` or returning None) is reported as
"not implemented yet", so a notebook still runs top to bottom. Each check prints one message and returns a
``CheckResult`` that is truthy when the function passed.

The checks live with their notebook: ``nb01_content`` ... ``nb06_beyond``, ``capstone`` (notebook 07) and
``nb08_realtime``; ``framework`` is how every check runs and reports.
"""

from __future__ import annotations

from . import (capstone, nb01_content, nb02_gram, nb03_losses, nb04_optimisation, nb05_studio, nb06_beyond,
               nb08_realtime)
from .capstone import check_capstone
from .framework import EDITION, CheckResult, Edition, hide_solutions
from .nb01_content import check_content_loss, check_receptive_field
from .nb02_gram import check_gram, check_style_layer_loss
from .nb03_losses import check_layer_weights, check_total_loss, check_tv_loss
from .nb04_optimisation import check_closure, check_gradient_step, check_seeded_noise, check_start_image
from .nb05_studio import check_stroke_layer
from .nb06_beyond import check_masked_gram
from .nb08_realtime import check_instance_norm

#: Every exercise's solution, in course order: ``{"gram": "def gram_matrix(features): ...", ...}``.
SOLUTIONS: dict[str, str] = {
    **nb01_content.SOLUTIONS, **nb02_gram.SOLUTIONS, **nb03_losses.SOLUTIONS, **nb04_optimisation.SOLUTIONS,
    **nb05_studio.SOLUTIONS, **nb06_beyond.SOLUTIONS, **capstone.SOLUTIONS, **nb08_realtime.SOLUTIONS,
}


def solution(name: str, edition: Edition = EDITION) -> None:
    """Print one possible solution of an exercise (``"gram"``, ``"content_loss"``, ``"tv_loss"``, ...)."""
    if name not in SOLUTIONS:
        raise KeyError(f"no exercise called {name!r}; the exercises are: {', '.join(SOLUTIONS)}")
    if edition.solutions_hidden:
        print("This is the student edition: solutions are with your instructor. The check tells you what is wrong.")
        return
    print(SOLUTIONS[name].strip("\n"))


__all__ = [
    "CheckResult", "SOLUTIONS", "check_capstone", "check_closure", "check_content_loss", "check_gradient_step",
    "check_gram", "check_instance_norm", "check_layer_weights", "check_masked_gram", "check_receptive_field", "check_seeded_noise",
    "check_start_image", "check_stroke_layer", "check_style_layer_loss", "check_total_loss", "check_tv_loss",
    "hide_solutions", "solution",
]
