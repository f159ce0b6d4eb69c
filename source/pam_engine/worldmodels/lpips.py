"""LPIPS (Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric") with the AlexNet trunk, in plain torch, loading the published weight layout.

The ``lpips`` package needs torchvision for its trunk, and torchvision does not load beside the
engine's CPU torch (NOTES.md), so the network is built here from the layouts of its two weight
files, which the user supplies (nothing is downloaded):

- LPIPS' linear layers (``weights/v0.1/alex.pth`` of the lpips package): ``lin{k}.model.1.weight``
  of shape (1, C_k, 1, 1) for the five AlexNet stages; a full ``LPIPS().state_dict()`` also holds
  the trunk as ``net.slice{s}.{i}.weight``/``bias``;
- otherwise the trunk from torchvision's AlexNet state dict (``features.{i}.weight``/``bias``,
  convolutions at indices 0, 3, 6, 8, 10), given separately.

Both load with ``torch.load(weights_only=True)``. Channel counts are read from the weights, so a
small network in the same layout (tests) loads the same way.
Forward: inputs in [-1, 1], shifted and scaled per channel, each stage's ReLU output
unit-normalised over channels, squared differences weighted by the linear layer, averaged over
space, summed over stages.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pam_engine.errors import ConfigError

#: (torchvision ``features`` index, stride, padding, max-pool before it) of AlexNet's convolutions.
ALEXNET_CONVS = ((0, 4, 2, False), (3, 1, 2, True), (6, 1, 1, True), (8, 1, 1, False), (10, 1, 1, False))
#: Which ``net.slice{s}`` holds each convolution in a full LPIPS state dict.
_SLICE_OF = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}
#: LPIPS' input normalisation (its ``ScalingLayer``).
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


def _load(path: str | Path, what: str) -> dict:
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle, zip and torch errors alike
        raise ConfigError(f"{what} {path}: not a readable torch state dict ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise ConfigError(f"{what} {path}: expected a state dict, got {type(state).__name__}")
    return state


class Lpips:
    """The LPIPS distance of two RGB uint8 images (H, W, 3) of the same size."""

    def __init__(self, convs: list[tuple[torch.Tensor, torch.Tensor]], lins: list[torch.Tensor]):
        self.convs, self.lins = convs, lins
        self.shift = torch.tensor(SHIFT).view(1, 3, 1, 1)
        self.scale = torch.tensor(SCALE).view(1, 3, 1, 1)

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        h = (x - self.shift) / self.scale
        for (weight, bias), (_, stride, padding, pool) in zip(self.convs, ALEXNET_CONVS):
            if pool:
                h = F.max_pool2d(h, kernel_size=3, stride=2)
            h = F.relu(F.conv2d(h, weight, bias, stride=stride, padding=padding))
            out.append(h)
        return out

    @torch.no_grad()
    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 3:
            raise ConfigError(f"LPIPS: expected two RGB images of one size, got {a.shape} and {b.shape}")
        x, y = (torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1)[None].float() / 127.5 - 1 for im in (a, b))
        total = 0.0
        for fa, fb, lin in zip(self._features(x), self._features(y), self.lins):
            na = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            nb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total += float(F.conv2d((na - nb) ** 2, lin).mean())
        return total


def load_lpips(weights: str | Path, backbone: str | Path | None = None) -> Lpips:
    """LPIPS-AlexNet from the linear-layer file ``weights`` and the trunk (in ``weights`` or in
    torchvision's AlexNet state dict ``backbone``); ConfigError naming a missing or misshapen key."""
    lin_state = _load(weights, "LPIPS weights")
    lins = []
    for k in range(len(ALEXNET_CONVS)):
        key = f"lin{k}.model.1.weight"
        if key not in lin_state:
            raise ConfigError(f"LPIPS weights {weights}: missing {key!r} (expected the lpips package's "
                              "weights/v0.1/alex.pth layout: lin0..lin4)")
        lins.append(lin_state[key].float())
    full = all(f"net.slice{_SLICE_OF[i]}.{i}.weight" in lin_state for i, *_ in ALEXNET_CONVS)
    if full:
        trunk, name = {f"features.{i}.{p}": lin_state[f"net.slice{_SLICE_OF[i]}.{i}.{p}"]
                       for i, *_ in ALEXNET_CONVS for p in ("weight", "bias")}, weights
    elif backbone is None:
        raise ConfigError(f"LPIPS weights {weights} hold only the linear layers: also give the AlexNet trunk "
                          "(torchvision's alexnet state dict, features.N.weight) as the goal's backbone=PATH")
    else:
        trunk, name = _load(backbone, "LPIPS backbone"), backbone
    convs, channels = [], 3
    for (i, *_), lin in zip(ALEXNET_CONVS, lins):
        w, b = trunk.get(f"features.{i}.weight"), trunk.get(f"features.{i}.bias")
        if w is None or b is None:
            raise ConfigError(f"LPIPS trunk {name}: missing features.{i}.weight/bias (AlexNet layout)")
        if w.ndim != 4 or w.shape[1] != channels or b.shape != (w.shape[0],) or lin.shape != (1, w.shape[0], 1, 1):
            raise ConfigError(f"LPIPS {name}: convolution features.{i} {tuple(w.shape)} does not fit the previous "
                              f"stage's {channels} channels or its linear layer {tuple(lin.shape)}")
        convs.append((w.float(), b.float()))
        channels = w.shape[0]
    return Lpips(convs, lins)
