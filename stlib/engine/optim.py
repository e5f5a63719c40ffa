"""The two optimisers ``stylize`` uses, for one image tensor: L-BFGS (one closure per step) and Adam.

They compute exactly what ``torch.optim.LBFGS(max_iter=1, tolerance_grad=0, tolerance_change=0)`` and
``torch.optim.Adam`` compute (tests/test_optim.py compares the iterates). They exist because the first
``torch.optim`` optimiser a process creates imports ``torch._dynamo`` (torch 2.x): about 1 s and 180 MB
of resident memory that a style-transfer run never uses.
"""

from __future__ import annotations

import math
from typing import Callable, List, Optional

import torch


class _OneTensorOptimizer:
    """What both optimisers share: one tensor ``param`` that needs gradients, and a closure evaluation."""

    def __init__(self, param: torch.Tensor) -> None:
        if not param.requires_grad:
            raise ValueError(f"{type(self).__name__} needs a tensor with requires_grad=True")
        self.param = param
        self.steps = 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradient of the parameter."""
        self.param.grad = None

    def _evaluate(self, closure: Callable[[], torch.Tensor]) -> "tuple[torch.Tensor, torch.Tensor]":
        """(loss, gradient of ``param``) from ``closure``, which must call ``backward``."""
        with torch.enable_grad():
            loss = closure()
        if self.param.grad is None:
            raise RuntimeError("the closure did not compute a gradient (call loss.backward() in it)")
        return loss, self.param.grad


class LBFGS(_OneTensorOptimizer):
    """Limited-memory BFGS on the tensor ``param``: one closure evaluation per ``step``, no line search.

    Step 1 moves along ``-grad`` by ``lr * min(1, 1 / |grad|_1)``; later steps along the two-loop
    recursion's direction over the last ``history_size`` curvature pairs (s, y), by ``lr``. Pairs with
    ``y.s <= 1e-10`` are skipped, and a step that is not a descent direction is not taken (as torch does).

    The two-loop recursion is computed from dot products instead of image-sized updates. Every number the
    recursion needs (alpha_i = rho_i s_i.q, beta_i = rho_i y_i.r) is a dot product of the gradient with a
    pair, or of two pairs, so one matrix product of the stored pairs with the three new vectors (s, y, -grad)
    gives them all. The scalar recursion then runs on those few numbers in float64, and one more product
    assembles the direction ``d = h q0 + sum_i c_i s_i + e_i y_i``. It is the same direction as torch's loops,
    in about 10 tensor operations and one device read per step instead of ~4 per pair plus a GPU sync per
    pair: on a GPU the optimiser otherwise costs more than a 512 px forward and backward pass.
    """

    def __init__(self, param: torch.Tensor, lr: float = 1.0, history_size: int = 10) -> None:
        super().__init__(param)
        if history_size < 1:
            raise ValueError(f"history_size must be >= 1, got {history_size}")
        self.lr, self.history_size = float(lr), int(history_size)
        m = self.history_size
        # rows [0, m): s of each kept pair, [m, 2m): its y, then scratch rows for the new s, the new y, -grad.
        self._rows: Optional[torch.Tensor] = None
        self._slots: List[int] = []  # ring slots of the kept pairs, oldest first
        self._sy = [[0.0] * m for _ in range(m)]  # _sy[i][j] = s_i . y_j (by slot)
        self._yy = [[0.0] * m for _ in range(m)]  # _yy[i][j] = y_i . y_j
        self.h_diag = 1.0
        self.d: Optional[torch.Tensor] = None
        self.t: float = self.lr
        self.prev_grad: Optional[torch.Tensor] = None

    @property
    def pairs(self) -> int:
        """How many curvature pairs are kept (at most ``history_size``)."""
        return len(self._slots)

    def _reset(self) -> None:
        """Forget every curvature pair (the next direction is steepest descent, scaled by ``h_diag``)."""
        self._slots.clear()

    def _scratch(self, grad: torch.Tensor) -> torch.Tensor:
        """The (2m + 3, N) rows: m stored s, m stored y, then scratch rows for the new s, the new y and -grad."""
        if self._rows is None:
            m = self.history_size
            self._rows = torch.zeros(2 * m + 3, grad.numel(), device=grad.device, dtype=grad.dtype)
        return self._rows

    def _dots(self) -> List[List[float]]:
        """(2m + 3, 3) as lists: every stored pair and new vector . (s_new, y_new, -grad), read in one transfer."""
        rows, m = self._scratch(self.param), self.history_size
        # One GEMM on a GPU; three matrix-vector products on a CPU, where this long, thin GEMM runs ~3x slower
        # than they do (measured at 256-512 px).
        if rows.is_cuda:
            return (rows @ rows[2 * m:].T).tolist()
        return torch.stack([torch.mv(rows, rows[2 * m + k]) for k in range(3)], dim=1).tolist()

    def _direction(self, dots: List[List[float]]) -> float:
        """Keep the new pair (s, y) in the scratch rows if ``y.s > 1e-10`` (torch's curvature condition) and set
        ``self.d = -H grad`` by the two-loop recursion on scalars. Returns ``grad . d`` (< 0: a descent direction)."""
        rows, m = self._scratch(self.param), self.history_size
        s_new, y_new, q0 = rows[2 * m], rows[2 * m + 1], rows[2 * m + 2]
        qq, ys = dots[2 * m + 2][2], dots[2 * m][1]
        sq = {j: dots[j][2] for j in self._slots}  # s_j . q0
        yq = {j: dots[m + j][2] for j in self._slots}  # y_j . q0
        if ys > 1e-10:  # keep the pair
            slot = self._slots.pop(0) if len(self._slots) == m else len(self._slots)
            rows[slot].copy_(s_new)
            rows[m + slot].copy_(y_new)
            sq.pop(slot, None)  # the pair this slot held is gone
            yq.pop(slot, None)
            for j in self._slots:
                self._sy[j][slot] = dots[j][1]  # s_j . y_new
                self._sy[slot][j] = dots[m + j][0]  # s_new . y_j
                self._yy[j][slot] = self._yy[slot][j] = dots[m + j][1]  # y_j . y_new
            self._sy[slot][slot], self._yy[slot][slot] = ys, dots[2 * m + 1][1]
            sq[slot], yq[slot] = dots[2 * m][2], dots[2 * m + 1][2]
            self._slots.append(slot)
            self.h_diag = ys / dots[2 * m + 1][1]
        # The two loops on scalars: q = q0 - sum_j a_j y_j, r = h q + sum_j (a_j - b_j) s_j.
        order, h = self._slots, self.h_diag
        rho = {i: 1.0 / self._sy[i][i] for i in order}
        alpha: dict = {}
        for k in range(len(order) - 1, -1, -1):
            i = order[k]
            alpha[i] = rho[i] * (sq[i] - sum(alpha[j] * self._sy[i][j] for j in order[k + 1:]))
        beta: dict = {}
        for k, i in enumerate(order):
            y_dot_q = yq[i] - sum(alpha[j] * self._yy[i][j] for j in order)
            beta[i] = rho[i] * (h * y_dot_q + sum((alpha[j] - beta[j]) * self._sy[j][i] for j in order[:k]))
        coef = [0.0] * (2 * m)
        for i in order:
            coef[i], coef[m + i] = alpha[i] - beta[i], -h * alpha[i]
        coef_t = torch.tensor(coef, dtype=rows.dtype).to(rows.device, non_blocking=True)
        self.d = torch.addmv(q0, rows[: 2 * m].T, coef_t, beta=h)  # d = h q0 + sum_i c_i s_i + e_i y_i
        return -(h * qq + sum(coef[i] * sq[i] + coef[m + i] * yq[i] for i in order))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Evaluate ``closure`` (which must call ``backward``) once and update the parameter in place."""
        loss, grad = self._evaluate(closure)
        grad = grad.reshape(-1)
        if self.steps == 0:
            l1 = float(grad.abs().sum())
            if l1 <= 0:
                return loss  # an exact stationary point
            self.steps = 1
            self.d = grad.neg()
            self.prev_grad = grad.clone(memory_format=torch.contiguous_format)
            self.t = min(1.0, 1.0 / l1) * self.lr
            self.param.add_(self.d.view_as(self.param), alpha=self.t)  # -grad is a descent direction
            return loss
        assert self.d is not None and self.prev_grad is not None
        rows, m = self._scratch(grad), self.history_size
        torch.mul(self.d, self.t, out=rows[2 * m])
        torch.sub(grad, self.prev_grad, out=rows[2 * m + 1])
        torch.neg(grad, out=rows[2 * m + 2])
        dots = self._dots()
        if dots[2 * m + 2][2] <= 0:
            return loss  # an exact stationary point
        self.steps += 1
        grad_dot_d = self._direction(dots)
        self.prev_grad.copy_(grad)
        self.t = self.lr
        if grad_dot_d > 0:
            return loss  # not a descent direction: stay put (torch's tolerance_change=0 check)
        self.param.add_(self.d.view_as(self.param), alpha=self.t)
        return loss


#: Relative rounding noise of one evaluation of the objective, by the precision of the network's forward and
#: backward pass (losses themselves are float32): the spread of ``loss(x) / loss_fp32(x) - 1`` over nearby x
#: (benchmarks/optim_grid.py --noise measures it). A trial whose change is within ``NOISE_MARGIN`` times this
#: of the best loss is no evidence of a rise, and a step whose predicted decrease is below it cannot be judged.
EVAL_NOISE = {"fp32": 1e-6, "bf16": 2e-3, "fp16": 5e-4}
NOISE_MARGIN = 2.0
#: Rejections in a row after which the safeguard starts again from steepest descent (a recovery) ...
RECOVER_AFTER = 6
#: ... at most this many times in a row: when every trial after the last recovery is rejected too, it has stalled.
MAX_RECOVERIES = 2


class SafeguardedLBFGS(LBFGS):
    """L-BFGS that never keeps a step which raised the loss beyond its rounding noise, with one closure
    evaluation per ``step``.

    Plain L-BFGS (``LBFGS``) moves by the full step ``-H grad`` and keeps whatever loss it lands on; with
    bf16 gradients, clamped pixels and the offline weights' poor conditioning a bad curvature pair can make
    that step overshoot by orders of magnitude, and the run then climbs for dozens of steps. Here each call
    evaluates the loss at the point the previous call moved to (the *trial*) and

    * accepts it when the loss fell enough (Armijo: ``f <= f_acc + c1 * grad_acc . s``, s the move actually
      made, clamping included) or lies within the evaluation noise of the best accepted loss
      (``f <= f_best + tol``, ``tol = NOISE_MARGIN * noise * f_best``): the pair (s, y) enters the history,
      the next step starts from here. With ``noise`` = 0 only the Armijo test remains;
    * otherwise rejects it: the parameter goes back onto the segment from the last accepted point, at the
      minimiser of the quadratic through f_acc, its slope and the trial's loss (kept within [0.1, 0.5] of the
      segment); the step scale that later steps start from shrinks with it and regrows x2 per accepted step.
      Two rejections in a row drop the curvature history (it predicted badly), as does a direction that is
      not a descent direction;
    * never takes a step too short to be judged: where the linear model promises a decrease below ``tol``
      (the first, steepest-descent step of a large gradient; a step scale shrunk by rejections) the step is
      lengthened until it promises ``tol`` - never beyond the full quasi-Newton step ``lr``, except on a
      steepest-descent step, whose length is a guess anyway;
    * with ``floor`` (a lower bound of the loss, e.g. 0), caps the step so that the quadratic model L-BFGS
      assumes along d (slope grad.d, curvature -grad.d) promises at most ``max_drop`` of the way down to the
      floor: a model that predicts a loss below what is possible has too little curvature, and its full step
      is the overshoot that would be rejected;
    * after ``RECOVER_AFTER`` rejections in a row, recovers: drops the history, resets the step scale and
      starts again from steepest descent at the best point (``recoveries`` counts them). When
      ``MAX_RECOVERIES`` recoveries in a row found no acceptable step (``RECOVER_AFTER`` more rejections after the
      last), ``stalled`` becomes True.

    So a rejected trial costs one evaluation, the same as a step; no accepted loss exceeds the best by more
    than the noise (never 2x); and it works with a replayed CUDA graph (one forward and backward per call at
    the current parameter, in the same precision). ``best_loss`` is the lowest accepted loss; ``accepted``
    tells whether the latest evaluation was accepted.

    The pairs use the displacement actually made (``param - accepted point``), so a clamp applied between
    steps (``stylize`` clamps pixels to [0, 1]) does not corrupt the curvature estimate as ``t * d`` would.
    """

    def __init__(self, param: torch.Tensor, lr: float = 1.0, history_size: int = 10, c1: float = 1e-4,
                 floor: Optional[float] = None, max_drop: float = 0.5, noise: float = 0.0) -> None:
        super().__init__(param, lr=lr, history_size=history_size)
        if noise < 0:
            raise ValueError(f"noise must be >= 0 (a relative rounding error), got {noise}")
        self.c1, self.floor, self.max_drop, self.noise = float(c1), floor, float(max_drop), float(noise)
        self.accepted = True
        self.rejections = 0  # in total
        self.recoveries = 0  # in total
        self.best_loss = math.inf
        self._f_acc = math.inf  # the loss at the accepted point (within tol of best_loss)
        self._x_acc: Optional[torch.Tensor] = None  # the last accepted point, flattened
        self._scale = 1.0  # the next step's fraction of lr
        self._in_a_row = 0  # consecutive rejections
        self._recovering = 0  # recoveries since the last accepted step

    @property
    def stalled(self) -> bool:
        """True when every trial since ``MAX_RECOVERIES`` recoveries in a row was rejected: it cannot move."""
        return self._in_a_row >= (MAX_RECOVERIES + 1) * RECOVER_AFTER

    def tolerance(self) -> float:
        """How far above the best loss a trial may land and still be accepted: the evaluations' rounding noise."""
        return NOISE_MARGIN * self.noise * abs(self.best_loss) if math.isfinite(self.best_loss) else 0.0

    def _judgeable(self, t: float, grad_dot_d: float, limit: float) -> float:
        """``t``, lengthened (up to ``limit``) so that the linear decrease ``-t grad.d`` is at least the tolerance."""
        tol = self.tolerance()
        if tol <= 0 or grad_dot_d >= 0 or -t * grad_dot_d >= tol:
            return t
        return max(t, min(limit, tol / -grad_dot_d))

    def _capped(self, t: float, f: float, grad_dot_d: float) -> float:
        """``t`` capped by the floor: the quadratic model along d promises at most ``max_drop`` of the way down."""
        if self.floor is not None and grad_dot_d < 0:
            # The quadratic model along d (curvature -grad.d, what L-BFGS assumes) falls by -t grad.d / 2 at t = 1.
            return min(t, self.max_drop * 2 * (f - self.floor) / -grad_dot_d)
        return t

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Evaluate ``closure`` once at the current parameter; accept or reject it, then move the parameter."""
        loss, grad = self._evaluate(closure)
        grad, x, f = grad.reshape(-1), self.param.reshape(-1), float(loss)
        if self.steps == 0 or self._x_acc is None:
            return self._first(loss, f, grad)
        assert self.prev_grad is not None
        rows, m = self._scratch(grad), self.history_size
        torch.sub(x, self._x_acc, out=rows[2 * m])  # s: the move actually made since the accepted point
        torch.sub(grad, self.prev_grad, out=rows[2 * m + 1])
        torch.neg(grad, out=rows[2 * m + 2])
        dots = self._dots()
        # grad_acc . s = grad . s - y . s = -(s . q0) - (s . y)
        slope = -dots[2 * m][2] - dots[2 * m][1]
        armijo = f <= self._f_acc + self.c1 * min(slope, 0.0)
        if not (math.isfinite(f) and (armijo or f <= self.best_loss + self.tolerance())):
            return self._reject(loss, f, slope)
        self.accepted, self._in_a_row, self._recovering = True, 0, 0
        self.steps += 1
        self.best_loss, self._f_acc = min(self.best_loss, f), f
        self._x_acc.copy_(x)
        if dots[2 * m + 2][2] <= 0:
            return loss  # an exact stationary point
        grad_dot_d = self._direction(dots)
        self.prev_grad.copy_(grad)
        steepest = not self._slots
        if not grad_dot_d < 0:  # the history no longer describes the function: start again from -grad
            self._reset()
            grad_dot_d, steepest = self._direction_from_reset(dots), True
        self._scale = min(1.0, 2.0 * self._scale)
        t = self._judgeable(self.lr * self._scale, grad_dot_d, math.inf if steepest else self.lr)
        self.t = self._capped(t, f, grad_dot_d)
        self.param.add_(self.d.view_as(self.param), alpha=self.t)
        return loss

    def _first(self, loss: torch.Tensor, f: float, grad: torch.Tensor) -> torch.Tensor:
        """The first evaluation: accept it and move along -grad by ``lr * min(1, 1 / |grad|_1)`` (as ``LBFGS``),
        lengthened where that is too short to be judged against the noise."""
        l1 = float(grad.abs().sum())
        self.accepted, self.best_loss, self._f_acc = True, f, f
        if l1 <= 0 or not math.isfinite(f):
            return loss
        self.steps = 1
        self._x_acc = self.param.detach().reshape(-1).clone()
        self.d = grad.neg()
        self.prev_grad = grad.clone(memory_format=torch.contiguous_format)
        self._steepest(f, -float(grad.dot(grad)), min(1.0, 1.0 / l1) * self.lr)
        return loss

    def _steepest(self, f: float, grad_dot_d: float, t: float) -> None:
        """Move from the accepted point along ``self.d`` (steepest descent) by ``t``, lengthened and capped."""
        self.t = self._capped(self._judgeable(t, grad_dot_d, math.inf), f, grad_dot_d)
        self.param.add_(self.d.view_as(self.param), alpha=self.t)

    def _direction_from_reset(self, dots: List[List[float]]) -> float:
        """-h_diag * grad after the history was dropped (h_diag: the last kept pair's scale)."""
        m = self.history_size
        rows = self._scratch(self.param)
        self.d = rows[2 * m + 2].mul(self.h_diag)
        return -self.h_diag * dots[2 * m + 2][2]

    def _reject(self, loss: torch.Tensor, f: float, slope: float) -> torch.Tensor:
        """Go back towards the accepted point along the trial's segment s (in the scratch rows) and shrink; after
        ``RECOVER_AFTER`` rejections in a row, recover instead (``_recover``)."""
        self.accepted = False
        self.rejections += 1
        self._in_a_row += 1
        assert self._x_acc is not None
        if self._in_a_row % RECOVER_AFTER == 0 and self._recovering < MAX_RECOVERIES:
            return self._recover(loss)
        rise = f - self._f_acc - slope
        frac = -slope / (2 * rise) if slope < 0 and rise > 0 and math.isfinite(rise) else 0.1
        frac = min(max(frac, 0.1), 0.5)
        self._scale *= frac
        if self._in_a_row >= 2:
            self._reset()
        m = self.history_size
        s = self._scratch(self.param)[2 * m]
        self.param.copy_(torch.add(self._x_acc, s, alpha=frac).view_as(self.param))
        return loss

    def _recover(self, loss: torch.Tensor) -> torch.Tensor:
        """Start again from the accepted point: no history, step scale 1, a steepest-descent step along the
        accepted point's gradient of the length its curvature ``h_diag`` suggests (or the first step's rule)."""
        assert self._x_acc is not None and self.prev_grad is not None
        self.recoveries += 1
        self._recovering += 1
        self._reset()
        self._scale = 1.0
        self.param.copy_(self._x_acc.view_as(self.param))
        self.d = self.prev_grad.neg()
        g2 = float(self.prev_grad.dot(self.prev_grad))
        l1 = float(self.prev_grad.abs().sum())
        if g2 <= 0:
            return loss
        # Each recovery tries a 10x longer first step: the shorter ones were rejected.
        t = min(1.0, 1.0 / l1) * self.lr * 10.0 ** self._recovering
        self._steepest(self._f_acc, -g2, t)
        return loss


class Adam(_OneTensorOptimizer):
    """Adam (Kingma & Ba) on the tensor ``param`` with torch's defaults: betas (0.9, 0.999), eps 1e-8."""

    def __init__(self, param: torch.Tensor, lr: float = 0.02, betas: "tuple[float, float]" = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(param)
        self.lr, self.betas, self.eps = float(lr), betas, float(eps)
        self.m = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.v = torch.zeros_like(param, memory_format=torch.preserve_format)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Evaluate ``closure`` (which must call ``backward``) and take one Adam step."""
        loss, grad = self._evaluate(closure)
        beta1, beta2 = self.betas
        self.steps += 1
        self.m.lerp_(grad, 1 - beta1)
        self.v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias1, bias2 = 1 - beta1 ** self.steps, 1 - beta2 ** self.steps
        denom = (self.v.sqrt() / math.sqrt(bias2)).add_(self.eps)
        self.param.addcdiv_(self.m, denom, value=-self.lr / bias1)
        return loss


#: L-BFGS keeps as many curvature pairs (s, y: two float32 image-sized rows, 24 bytes per RGB pixel) as fit in
#: ``LBFGS_HISTORY_BYTES``, at least ``LBFGS_HISTORY_MIN`` and at most ``LBFGS_HISTORY_MAX`` (``lbfgs_history``):
#: 25 pairs up to 334 px (square images), 18 at 384 px, 10 from 512 px. With today's offline weights 25 pairs
#: reach the objective of 10 pairs in 0-15 % fewer steps at 256 px (six photo/painting pairs) and 3-23 % at
#: 128 px (four; 50 pairs: no better than 25), and 10 pairs keep a 512 px run's memory as it was
#: (benchmarks/README.md, "A longer history").
LBFGS_HISTORY_MIN, LBFGS_HISTORY_MAX = 10, 25
LBFGS_HISTORY_BYTES = 64 * 2**20


def lbfgs_history(numel: int) -> int:
    """Curvature pairs L-BFGS keeps for an image of ``numel`` values (3 x H x W): as many as fit in
    ``LBFGS_HISTORY_BYTES`` at 8 bytes per value and pair, clipped to [LBFGS_HISTORY_MIN, LBFGS_HISTORY_MAX]."""
    if numel < 1:
        raise ValueError(f"numel must be >= 1, got {numel}")
    fit = LBFGS_HISTORY_BYTES // (2 * 4 * numel)
    return int(min(LBFGS_HISTORY_MAX, max(LBFGS_HISTORY_MIN, fit)))


#: The optimisers ``make_optimizer`` (and so ``stylize``, ``estimate`` and the CLI) accept.
OPTIMIZERS = ("lbfgs", "lbfgs-plain", "adam")


def make_optimizer(name: str, x: torch.Tensor, lr: float | None, precision: str = "fp32") -> LBFGS | Adam:
    """The optimiser for the image ``x``: "lbfgs" (safeguarded, lr 1), "lbfgs-plain" (lr 1) or "adam" (lr 0.02).
    ``precision`` (of the forward/backward pass) sets the safeguard's noise tolerance (``EVAL_NOISE``); both L-BFGS
    keep ``lbfgs_history(x.numel())`` curvature pairs.

    stlib.engine.optim's, which work without importing torch._dynamo (~1 s, ~180 MB); the plain L-BFGS and Adam
    compute what torch.optim's do, one closure evaluation per step.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}, not {name!r}")
    if name == "adam":
        return Adam(x, lr=lr or 0.02)
    if name == "lbfgs-plain":
        return LBFGS(x, lr=lr or 1.0, history_size=lbfgs_history(x.numel()))
    # floor=0: every term of the objective is >= 0, so a step whose model promises more than half the way down
    # to 0 has too little curvature (the cap kept the course's settings free of >2x rises; test_course_settings).
    return SafeguardedLBFGS(x, lr=lr or 1.0, history_size=lbfgs_history(x.numel()), floor=0.0,
                            noise=EVAL_NOISE[precision])
