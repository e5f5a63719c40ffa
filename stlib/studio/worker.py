"""The studio's worker: one thread that runs ``stylize`` and re-targets it when the settings change.

How it stays responsive: the optimisation runs in a worker thread (torch releases the GIL, so the kernel
keeps answering the browser). A settings change only bumps a *settings generation* and raises an abort
flag; the worker notices within one network layer (hooks on the model raise ``Abort``), throws away the
current ``stylize`` call and starts a new one from the current image (a warm start) with the latest
settings. Changes are coalesced: ten quick ticks cause at most a couple of restarts, never a queue. On a
slow CPU the first steps after a restart run at a smaller "preview" size (``stylize``'s coarse-to-fine
``scales``), so the first picture under the new settings arrives within about a second.

No widgets here: the worker reports to a ``Listener`` (the app shows what it hears in widgets; a test
records it), so it runs headless.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..color import recombine_color
from ..images import resize
from ..model import VGG19Features
from ..result import StepInfo, StopReason, StylizeResult
from ..shares import LayerShares, loss_shares, per_layer_gradient_norms
from ..transfer import stylize
from ..units import format_seconds
from .inputs import ImageStore
from .pace import Pace
from .settings import StudioSettings

#: A run whose estimate exceeds this many seconds gets a warning in the status line before it starts.
SLOW_RUN_S = 60.0
#: Previews go to the listener at most this often (each becomes a PNG sent over the websocket).
MIN_PREVIEW_INTERVAL_S = 0.1
#: The per-layer gradient shares are measured on a copy of the image this many pixels on the long edge (one
#: forward and one backward per style layer: ~0.1-0.3 s on a laptop CPU), at most every ``shares_every_s``.
SHARES_SIZE = 128
STOPPED = "Stopped. The image so far is kept; press Run to start again."


class Abort(Exception):
    """Raised inside the worker (from model hooks or the callback) to end the current ``stylize`` call."""


@contextlib.contextmanager
def abortable(model: VGG19Features, flag: threading.Event) -> Iterator[None]:
    """While active, ``model`` raises ``Abort`` soon after ``flag`` is set: before any layer of a forward pass,
    and between layers of a backward pass. That is what lets a slider or Stop interrupt a step that takes
    seconds on a CPU, instead of waiting for it to finish. The hooks are removed on exit.

    Only the thread that entered the context is interrupted (CPU backward passes run on that thread too), so
    another studio or notebook cell using the same model at the same time is left alone."""
    owner = threading.get_ident()

    def check(*_: Any) -> None:
        if flag.is_set() and threading.get_ident() == owner:
            raise Abort()

    def after(module: nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(check)  # runs during backward; returns None, so the gradient is unchanged

    handles = []
    for module in model.layers.children():
        handles.append(module.register_forward_pre_hook(check))
        handles.append(module.register_forward_hook(after))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def pooling_twin(model: VGG19Features, pooling: str) -> VGG19Features:
    """``model`` with its pooling layers swapped for ``pooling`` ("max" or "avg"); the convolutions (the
    weights) are shared, not copied."""
    if model.pooling == pooling:
        return model
    twin = VGG19Features(pooling=pooling, device="meta")
    twin.layers = nn.Sequential(OrderedDict(
        (name, twin.layers[i] if name.startswith("pool") else module)
        for i, (name, module) in enumerate(model.layers.named_children())))
    twin.mean, twin.std = model.mean, model.std
    twin.weights_source = model.weights_source
    return twin.eval()


class Listener:
    """What the worker reports. The default does nothing; the app and tests override what they need."""

    def on_status(self, text: str, kind: str = "info") -> None:
        """A status line; ``kind`` is "info", "warn", "error" or "done"."""

    def on_preview(self, image: torch.Tensor, generation: int, info: StepInfo | None) -> None:
        """A new picture (1, 3, H, W) under settings ``generation`` (``info``: None for the final one)."""

    def on_plot(self, history: list[dict[str, float]], retargets: list[int]) -> None:
        """The loss history so far (throttled to ``plot_every_s``, and once at the end)."""

    def on_busy(self, what: str | None) -> None:
        """The worker started a job ("run", "sweep") or ended one (None)."""

    def on_shares(self, shares: LayerShares, step: int) -> None:
        """Each style layer's share of the weighted style loss and of the gradient, at ``step`` (throttled)."""


@dataclass
class StylizeCall:
    """One ``stylize`` call the worker made: which settings generation, and whether it was a warm start."""

    generation: int
    settings: StudioSettings
    warm: bool
    init: str | torch.Tensor
    preview_size: int | None
    started: float
    first_preview: float | None = None
    last_image: torch.Tensor | None = None
    outcome: str = "running"


class Worker:
    """Runs ``stylize`` in a thread for the settings ``settings()`` returns, re-targeting when ``changed()``
    is called. ``preview``: "auto" runs the first steps after a change at a smaller size when full-size steps
    are slow; None never. See the module docstring for how the pieces fit."""

    def __init__(self, model: VGG19Features, settings: Callable[[], StudioSettings], images: ImageStore,
                 listener: Listener | None = None, *, precision: str = "auto", every: int = 1,
                 preview: str | None = "auto", plot_every_s: float = 1.0, shares_every_s: float = 2.0) -> None:
        if every < 1:
            raise ValueError("every must be >= 1 (the preview updates every `every` steps)")
        self.model, self.settings, self.images = model, settings, images
        self.listener = listener or Listener()
        self.device = model.mean.device
        self.precision, self.every = precision, int(every)
        #: Measured seconds per step by working size, and the preview stage after a change (``studio.pace``).
        self.pace = Pace(self.device, precision, preview, model)
        self.plot_every_s = float(plot_every_s)
        self.shares_every_s = float(shares_every_s)
        self._shares_time = 0.0
        self._share_targets: dict[tuple[Any, ...], dict[str, torch.Tensor]] = {}
        self.lock = threading.RLock()
        self.abort = threading.Event()  # set: end the current stylize call (a change, or Stop)
        self.stop_flag = threading.Event()  # set: end the job
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._models = {model.pooling: model}
        self._work_image: torch.Tensor | None = None  # what the optimiser works on (grey if colours kept)
        self._work_preserve = False
        self._preview_time = self._plot_time = 0.0
        #: The latest image (1, 3, H, W) in [0, 1], colours recombined when "keep colours" is on.
        self.image: torch.Tensor | None = None
        #: The last ``stylize`` result that ran to its end (None while re-targeting or after a Stop).
        self.result: StylizeResult | None = None
        #: Every ``stylize`` call the worker made, oldest first.
        self.calls: list[StylizeCall] = []
        #: Loss per step across re-targets: dicts with ``step``, ``total``, ``content``, ``style``, ``tv``.
        self.history: list[dict[str, float]] = []
        #: Steps (in ``history``'s numbering) at which the settings changed mid-run.
        self.retargets: list[int] = []
        #: The last error, or None.
        self.error: str | None = None
        #: The latest per-layer shares (``on_shares``), or None before the first measurement.
        self.shares: LayerShares | None = None

    # ------------------------------------------------------------------ state
    @property
    def generation(self) -> int:
        """Settings generation: goes up by one with every ``changed()``."""
        return self._generation

    @property
    def running(self) -> bool:
        """True while the worker thread is alive (a run or a sweep)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def changed(self) -> None:
        """The settings changed: a running job restarts with whatever ``settings()`` says when it gets there."""
        with self.lock:
            self._generation += 1
            if self.running:
                self.abort.set()

    def model_for(self, pooling: str) -> VGG19Features:
        """The network with ``pooling`` layers (made once, sharing the loaded weights)."""
        if pooling not in self._models:
            self._models[pooling] = pooling_twin(self.model, pooling)
        return self._models[pooling]

    # ------------------------------------------------------------------ jobs
    def run(self) -> bool:
        """Start optimising in the background with the current settings; False if already running."""
        return self.start(self._run_job, "run")

    def stop(self, wait: bool = True, timeout: float = 5.0) -> bool:
        """Stop the run or sweep, keeping the image so far; with ``wait``, True once the worker has ended."""
        with self.lock:
            self.stop_flag.set()
            self.abort.set()
        return self.wait(timeout) if wait else not self.running

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker is idle (or ``timeout`` seconds pass); True if it is idle."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    def start(self, job: Callable[[], None], what: str) -> bool:
        """Run ``job`` in the worker thread; False (and a status line) if a job is running."""
        with self.lock:
            if self.running:
                self.listener.on_status(f"Already running: press Stop before starting a {what}.", "warn")
                return False
            self.stop_flag.clear()
            self.abort.clear()
            self.error = None
            self._thread = threading.Thread(target=self._guarded, args=(job, what), name=f"stlib-studio-{what}",
                                            daemon=True)
            self.listener.on_busy(what)
            self._thread.start()
        return True

    def _guarded(self, job: Callable[[], None], what: str) -> None:
        """Thread body: any exception becomes a readable status line, and the studio stays usable."""
        try:
            job()
        except Abort:
            self.listener.on_status(STOPPED, "done")
        except Exception as exc:  # shown to the student instead of dying silently in a thread
            self.error = readable_error(exc)
            self.listener.on_status(self.error, "error")
        finally:
            self.listener.on_busy(None)

    # ------------------------------------------------------------------ the run
    def _announce(self, s: StudioSettings) -> None:
        est = self.pace.estimate(s)
        if est is None:
            self.listener.on_status(f"Starting: {s.steps} steps at {s.size} px.")
        elif not est.fits:
            raise RuntimeError(f"A {s.size} px run would not fit in memory ({est.message}): choose a smaller "
                               "size and press Run again.")
        elif est.seconds > SLOW_RUN_S:
            self.listener.on_status(f"This run will be slow: {s.steps} steps at {s.size} px, {est.message}. "
                                 "Stop keeps the image so far.", "warn")
        else:
            self.listener.on_status(f"Starting: {s.steps} steps at {s.size} px, {est.message}.")

    def _run_job(self) -> None:
        with self.lock:
            generation = self._generation
            self.abort.clear()
        s = self.settings()
        self._announce(s)
        self.history, self.retargets, self.result = [], [], None
        warm_from = self._work_image if s.init == "current" else None
        if s.init == "current" and warm_from is None:
            raise ValueError("There is no current image yet: choose another 'start from' and press Run.")
        previous = s
        while True:
            call = StylizeCall(generation, s, warm_from is not None, warm_from if warm_from is not None else s.init,
                               self.pace.preview_size(s), time.perf_counter())
            self.calls.append(call)
            for old in self.calls[:-3]:  # keep memory flat through a long demo: old records drop their images
                old.last_image = None
                old.init = "tensor" if isinstance(old.init, torch.Tensor) else old.init
            try:
                with abortable(self.model_for(s.pooling), self.abort):
                    result = self._stylize(call)
            except Abort:
                call.outcome = "aborted"
            else:
                call.outcome = "finished"
                if self._generation == generation or result.stop_reason == StopReason.STOP_EVENT:
                    self._finish(s, result)
                    return
            with self.lock:  # the settings changed (or Stop): start again with the newest settings
                if self.stop_flag.is_set():
                    self._finish(s, None)
                    return
                generation = self._generation
                self.abort.clear()
            s = self.settings()
            cold = (s.content != previous.content or s.pooling != previous.pooling
                    or (s.init != previous.init and s.init != "current"))
            warm_from = None if cold or self._work_image is None else self._work_image
            if self.history:
                self.retargets.append(int(self.history[-1]["step"]))
            changes = s.changes_from(previous) or ["settings"]
            start = "from the start" if warm_from is None else "from the current image"
            self.listener.on_status(f"Re-targeting (settings #{generation}): {', '.join(changes)}; continuing {start}.")
            previous = s

    def _stylize(self, call: StylizeCall) -> StylizeResult:
        s = call.settings
        content = self.images.get(s.content)
        init: str | torch.Tensor = call.init
        if call.warm and s.preserve_color != self._work_preserve and self.image is not None:
            init = self.image  # switching colour mode: start from the picture as seen, not the grey working copy
        steps, scales = self.pace.plan(s, call.preview_size)
        return self.stylize(s, init=init, steps=steps, scales=scales, callback=self._step_callback(call, content),
                            every=self.every, stop=self.stop_flag)

    def stylize(self, s: StudioSettings, **overrides: Any) -> StylizeResult:
        """``stylize`` with settings ``s`` on this worker's network and precision (every call goes through here)."""
        content, style = self.images.get(s.content), self.images.get(s.style)
        return stylize(content, style, **s.stylize_kwargs(
            model=self.model_for(s.pooling), precision=self.precision, progress=False, **overrides))

    def _step_callback(self, call: StylizeCall, content: torch.Tensor) -> Callable[[StepInfo], None]:
        """The per-step callback of one ``stylize`` call: abort check, speed, history, throttled previews."""
        s = call.settings
        base = int(self.history[-1]["step"]) if self.history else 0
        color_ref: dict[tuple[int, int], torch.Tensor] = {}
        last: dict[str, Any] = {"time": None, "size": 0}

        def on_step(info: StepInfo) -> None:
            if self.abort.is_set():
                raise Abort()
            now = time.perf_counter()
            h, w = info.image.shape[-2:]
            if last["time"] is not None and last["size"] == w:  # time per step, by working size
                self.pace.record(max(h, w), (now - last["time"]) / self.every)
            last["time"], last["size"] = now, w
            work = shown = info.image
            if s.preserve_color:
                if (h, w) not in color_ref:
                    color_ref[(h, w)] = resize(content, (h, w))
                shown = recombine_color(work, color_ref[(h, w)])
            self._work_image, self._work_preserve = work, s.preserve_color
            self.image = shown
            call.last_image = work
            self.history.append({"step": base + info.step, **info.losses, "accepted": info.accepted})
            throttled = now - self._preview_time < MIN_PREVIEW_INTERVAL_S
            if call.first_preview is not None and throttled and info.step < info.steps:
                return  # fast steps (a GPU): do not flood the browser; a call's first and last pictures always go
            self._preview_time = now
            if call.first_preview is None:
                call.first_preview = now
            self.listener.on_preview(shown, call.generation, info)
            if now - self._plot_time >= self.plot_every_s:
                self._plot_time = now
                self.listener.on_plot(self.history, self.retargets)
            if info.layers and s.style_layers and s.style_weight > 0 and now - self._shares_time >= self.shares_every_s:
                self.shares = self.measure_shares(s, info)
                self._shares_time = time.perf_counter()  # after measuring: its own time never crowds the run out
                self.listener.on_shares(self.shares, base + info.step)

        return on_step

    def measure_shares(self, s: StudioSettings, info: StepInfo) -> LayerShares:
        """Loss shares from the step's own per-layer losses; gradient shares measured on a ``SHARES_SIZE`` copy of
        the image against the painting at that size (``stlib.shares``), in the run's precision."""
        from ..engine.objective import compute_targets
        from ..engine.precision import autocast, resolve_precision
        from ..engine.settings import style_side

        model = self.model_for(s.pooling)
        image = resize(info.image, min(SHARES_SIZE, max(info.image.shape[-2:]))).to(self.device)
        precision = resolve_precision(self.precision, self.device)
        side = style_side(max(image.shape[-2:]), s.style_scale)
        key = (s.style, s.pooling, tuple(s.style_layers), side)
        with autocast(precision, self.device):
            if key not in self._share_targets:
                painting = resize(self.images.get(s.style), side).to(self.device)
                self._share_targets = {key: compute_targets(model, image, [painting], {}, s.style_layers, [1.0]).style}
            _, norms = per_layer_gradient_norms(model, image, self._share_targets[key], s.style_layers)
        total = sum(norms.values())
        gradient = {n: v / total if total > 0 else 1 / len(norms) for n, v in norms.items()}
        return LayerShares(loss=loss_shares(info.layers, s.style_layers), gradient=gradient)

    def _finish(self, s: StudioSettings, result: StylizeResult | None) -> None:
        if result is not None:
            self.image = result.image  # the best image of the call (a Stop that stylize saw itself included)
            if result.stop_reason != StopReason.STOP_EVENT:
                self.result = result
        if self.image is not None and max(self.image.shape[-2:]) < s.size:
            self.image = resize(self.image, s.size)  # stopped during the preview stage: bring it to size
        if self.image is not None:
            self.listener.on_preview(self.image, self._generation, None)  # the latest picture, even if throttled
        self.listener.on_plot(self.history, self.retargets)
        if self.result is None:
            self.listener.on_status(STOPPED, "done")
            return
        why = f" ({result.stopped})" if result is not None and result.stopped else ""
        total = int(self.history[-1]["step"]) if self.history else result.steps
        stalled = result.stop_reason == StopReason.STALLED
        done = "Stalled (the optimiser could not lower the loss)" if stalled else "Done"
        self.listener.on_status(f"{done}: {result.steps} steps in {format_seconds(result.elapsed)} ({total} in all), final loss "
                             f"{result.history[-1]['total']:.3g}{why}.", "done")


def readable_error(exc: BaseException) -> str:
    """The message a student should see for an exception raised in the worker."""
    from ..images import ImageLoadError

    message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc) or type(exc).__name__
    if not isinstance(exc, (ImageLoadError, ValueError, KeyError, RuntimeError)):
        message = f"{type(exc).__name__}: {message}"
    lowered = message.lower()
    if isinstance(exc, MemoryError) or "out of memory" in lowered or "can't allocate memory" in lowered:
        message = "Out of memory: choose a smaller size and press Run again."
    return message
