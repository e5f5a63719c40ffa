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


class LBFGS:
    """Limited-memory BFGS on the tensor ``param``: one closure evaluation per ``step``, no line search.

    Step 1 moves along ``-grad`` by ``lr * min(1, 1 / |grad|_1)``; later steps along the two-loop
    recursion's direction over the last ``history_size`` curvature pairs (s, y), by ``lr``. Pairs with
    ``y.s <= 1e-10`` are skipped, and a step that is not a descent direction is not taken (as torch does).
    """

    def __init__(self, param: torch.Tensor, lr: float = 1.0, history_size: int = 10) -> None:
        if not param.requires_grad:
            raise ValueError("LBFGS needs a tensor with requires_grad=True")
        self.param, self.lr, self.history_size = param, float(lr), int(history_size)
        self.steps = 0
        self.old_dirs: List[torch.Tensor] = []  # y = grad_k - grad_{k-1}
        self.old_stps: List[torch.Tensor] = []  # s = t * d
        self.ro: List[torch.Tensor] = []  # 1 / (y . s)
        self.h_diag: torch.Tensor = torch.ones((), device=param.device)
        self.d: Optional[torch.Tensor] = None
        self.t: float = self.lr
        self.prev_grad: Optional[torch.Tensor] = None

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradient of the parameter."""
        self.param.grad = None

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Evaluate ``closure`` (which must call ``backward``) once and update the parameter in place."""
        with torch.enable_grad():
            loss = closure()
        if self.param.grad is None:
            raise RuntimeError("the closure did not compute a gradient (call loss.backward() in it)")
        grad = self.param.grad.reshape(-1)
        if grad.abs().max() <= 0:
            return loss  # an exact stationary point
        self.steps += 1
        if self.steps == 1:
            d = grad.neg()
        else:
            assert self.d is not None and self.prev_grad is not None
            y = grad.sub(self.prev_grad)
            s = self.d.mul(self.t)
            ys = y.dot(s)
            if ys > 1e-10:
                if len(self.old_dirs) == self.history_size:
                    self.old_dirs.pop(0), self.old_stps.pop(0), self.ro.pop(0)
                self.old_dirs.append(y)
                self.old_stps.append(s)
                self.ro.append(1.0 / ys)
                self.h_diag = ys / y.dot(y)
            alphas: List[torch.Tensor] = [torch.zeros(())] * len(self.old_dirs)
            q = grad.neg()
            for i in range(len(self.old_dirs) - 1, -1, -1):
                alphas[i] = self.old_stps[i].dot(q) * self.ro[i]
                q.add_(self.old_dirs[i], alpha=-alphas[i])
            d = r = torch.mul(q, self.h_diag)
            for i in range(len(self.old_dirs)):
                beta = self.old_dirs[i].dot(r) * self.ro[i]
                r.add_(self.old_stps[i], alpha=alphas[i] - beta)
        if self.prev_grad is None:
            self.prev_grad = grad.clone(memory_format=torch.contiguous_format)
        else:
            self.prev_grad.copy_(grad)
        self.t = min(1.0, 1.0 / float(grad.abs().sum())) * self.lr if self.steps == 1 else self.lr
        self.d = d
        if grad.dot(d) > 0:
            return loss  # not a descent direction: stay put (torch's tolerance_change=0 check)
        self.param.add_(d.view_as(self.param), alpha=self.t)
        return loss


class Adam:
    """Adam (Kingma & Ba) on the tensor ``param`` with torch's defaults: betas (0.9, 0.999), eps 1e-8."""

    def __init__(self, param: torch.Tensor, lr: float = 0.02, betas: "tuple[float, float]" = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        if not param.requires_grad:
            raise ValueError("Adam needs a tensor with requires_grad=True")
        self.param, self.lr, self.betas, self.eps = param, float(lr), betas, float(eps)
        self.steps = 0
        self.m = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.v = torch.zeros_like(param, memory_format=torch.preserve_format)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradient of the parameter."""
        self.param.grad = None

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Evaluate ``closure`` (which must call ``backward``) and take one Adam step."""
        with torch.enable_grad():
            loss = closure()
        grad = self.param.grad
        if grad is None:
            raise RuntimeError("the closure did not compute a gradient (call loss.backward() in it)")
        beta1, beta2 = self.betas
        self.steps += 1
        self.m.lerp_(grad, 1 - beta1)
        self.v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias1, bias2 = 1 - beta1 ** self.steps, 1 - beta2 ** self.steps
        denom = (self.v.sqrt() / math.sqrt(bias2)).add_(self.eps)
        self.param.addcdiv_(self.m, denom, value=-self.lr / bias1)
        return loss
