"""A trained style (``TrainedStyle``: network, settings, history), and its file: a few MB with the network's
weights, its settings and a checksum.

    style = stlib.style_training.train_style("swirls")
    style.save("swirls.style.pt")
    style = load_style("swirls.style.pt")       # StyleFileError with one sentence if the file is not right
    out = style.apply(photo)

The file is a ``torch.save`` dict (read back with ``weights_only=True``: no code is ever unpickled):
``format`` ("stlib-style"), ``version``, ``net`` (the ``NetConfig``), ``settings`` (what it was trained with),
``state`` (float32 tensors) and ``sha256``, a checksum of everything else, so that a damaged or edited file is
refused rather than painting garbage.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from .engine.precision import autocast
from .transform_net import NetConfig, TransformNet

FORMAT = "stlib-style"
VERSION = 1


@dataclass
class TrainedStyle:
    """A trained style: the network (best weights), its settings and the training history.

    ``history``: one dict per step (``step``, ``time``, ``total``, ``content``, ``style``, ``tv`` of the
    training batch) and, every ``every`` steps, ``probe`` (the probe batch's objective); ``best`` marks the step
    whose weights were kept (step 0: the untrained network, which returns the photo; ``settings["start_probe"]``
    is its probe objective). ``stopped``: None, or why training ended early ("interrupted", "time limit").
    """

    net: TransformNet
    settings: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0
    stopped: str | None = None

    def __call__(self, photo: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        return self.apply(photo, strength)

    def apply(self, photo: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """The stylised ``photo`` (B, 3, H, W) in [0, 1], CPU float32. ``strength`` in [0, 1] blends it with the
        photo (0: the photo, 1: the network's output)."""
        return apply_net(self.net, photo, strength)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the style file: the weights, ``settings`` and a checksum (``save_style``)."""
        return save_style(self, path)


def apply_net(net: TransformNet, photo: torch.Tensor, strength: float = 1.0,
              precision: str = "fp32") -> torch.Tensor:
    """Run ``net`` on ``photo`` (B, 3, H, W) in [0, 1] without gradients; returns CPU float32 in [0, 1].

    ``strength`` blends the output with the photo: ``strength * net(photo) + (1 - strength) * photo``
    (a network trained at one style weight cannot change its balance afterwards; a blend can).
    """
    if not 0.0 <= float(strength) <= 1.0:
        raise ValueError(f"strength must be between 0 (the photo) and 1 (the full style), not {strength!r}")
    if photo.dim() == 3:
        photo = photo[None]
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), autocast(precision, device):
            x = photo.to(device=device, dtype=torch.float32)
            out = net(x).float()
        out = strength * out + (1.0 - strength) * x if strength != 1.0 else out
    finally:
        net.train(was_training)
    return out.clamp(0, 1).cpu()


class StyleFileError(ValueError):
    """A style file that cannot be used: missing, not a trained style, damaged, or for another network."""


def checksum(net_config: Mapping[str, Any], settings: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> str:
    """sha256 (hex) of the configuration, the settings and every tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"net": dict(net_config), "settings": dict(settings)}, sort_keys=True,
                             default=str).encode())
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def save_style(style: TrainedStyle, path: str | os.PathLike) -> Path:
    """Write ``style`` (a ``TrainedStyle``: ``.net``, ``.settings``) to ``path``; returns the path.

    Written to a temporary file first and renamed, so an interrupted save never leaves half a file.
    """
    from .images import check_writable

    path = check_writable(Path(path).expanduser())
    net: TransformNet = style.net
    state = {k: (v.detach().float() if v.is_floating_point() else v.detach()).cpu().contiguous().clone()
             for k, v in net.state_dict().items()}  # float32 weights; batch norm's step counter stays an integer
    config = net.config.to_dict()
    settings = json.loads(json.dumps(dict(style.settings), default=str))  # plain values only
    payload = {"format": FORMAT, "version": VERSION, "net": config, "settings": settings, "state": state,
               "sha256": checksum(config, settings, state)}
    part = path.with_name(path.name + ".part")
    try:
        torch.save(payload, part)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    return path


def _read(path: Path) -> Any:
    if not path.exists():
        raise StyleFileError(f"no such file: {path} (train a style with `stlib train-style PAINTING -o {path.name}`)")
    if path.is_dir():
        raise StyleFileError(f"{path} is a folder, not a trained style file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file, truncated, or holding objects weights_only refuses
        raise StyleFileError(f"{path} is not a trained style (files written by `stlib train-style` or "
                             f"TrainedStyle.save): PyTorch cannot read it ({' '.join(str(err).split())[:120]})") from None


def _looks_like_vgg(data: Mapping[str, Any]) -> bool:
    keys = set(data.get("state_dict", data) if isinstance(data.get("state_dict"), Mapping) else data)
    return any(str(k).startswith(("conv1_1.", "features.0.")) for k in keys)


def load_style(path: str | os.PathLike, device: str | torch.device = "cpu") -> TrainedStyle:
    """Read a style file and rebuild its network: a ``TrainedStyle`` (eval mode, on ``device``).

    Refused with a ``StyleFileError`` (one sentence): a missing file, a file that is not a trained style (an
    image, a VGG weights file, any other checkpoint), one from a newer stlib, a damaged one (checksum), or one
    whose weights do not fit the network its settings describe.
    """
    path = Path(path).expanduser()
    data = _read(path)
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        if isinstance(data, Mapping) and _looks_like_vgg(data):
            raise StyleFileError(f"{path} is a VGG-19 weights file, not a trained style: pass it as --weights / "
                                 "STLIB_WEIGHTS, and give `stlib apply` a file written by `stlib train-style`")
        raise StyleFileError(f"{path} is a PyTorch file but not a trained style (no '{FORMAT}' format mark): "
                             "use a file written by `stlib train-style` or TrainedStyle.save")
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise StyleFileError(f"{path} has style-file version {version!r}, but this stlib reads up to version "
                             f"{VERSION}: upgrade stlib, or train the style again with this one")
    try:
        config_dict, settings, state, stored = data["net"], data["settings"], data["state"], data["sha256"]
    except KeyError as err:
        raise StyleFileError(f"{path} is damaged: its {err.args[0]!r} entry is missing; train the style again") from None
    if not (isinstance(state, Mapping) and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise StyleFileError(f"{path} is damaged: its weights are not a set of tensors; train the style again")
    if checksum(config_dict, settings, state) != stored:
        raise StyleFileError(f"{path} is damaged or was edited: its checksum does not match its contents; copy it "
                             "again or train the style again")
    try:
        config = NetConfig.from_dict(config_dict)
    except (TypeError, ValueError) as err:
        raise StyleFileError(f"{path} describes a network this stlib cannot build ({err}); upgrade stlib") from None
    net = TransformNet(config)
    _check_state(path, net, state)
    net.load_state_dict(state)
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise StyleFileError(f"{path} holds non-finite values in {name}: the training diverged; train again "
                                 "with a lower learning rate or style weight")
    net.eval().requires_grad_(False)
    return TrainedStyle(net=net.to(device), settings=dict(settings))


def _check_state(path: Path, net: TransformNet, state: Mapping[str, torch.Tensor]) -> None:
    """Refuse weights that do not fit ``net`` (the network the file's own settings describe), naming one culprit."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    described = ", ".join(f"{k}={v}" for k, v in net.config.to_dict().items())
    if missing or extra:
        what = f"lacks {missing[0]!r}" if missing else f"has an unexpected {extra[0]!r}"
        raise StyleFileError(f"{path} does not match the network it describes ({described}): its weights {what} "
                             f"({len(missing)} missing, {len(extra)} unexpected); it was written for another network")
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise StyleFileError(f"{path} does not match the network it describes ({described}): {name} has shape "
                                 f"{tuple(state[name].shape)}, the network needs {tuple(tensor.shape)}")
