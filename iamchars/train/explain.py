"""What the network looks at: occlusion sensitivity, a model-agnostic complement to gradient saliency.

A grey patch slides over the image; where covering the ink lowers the probability of the class most, the
decision rests there. Pure: a model and uint8 images in, arrays out."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from iamchars.train.models import GEOMETRY_INPUTS, GeometryNet

GREY = 0.5


def _logits(model: nn.Module, x: torch.Tensor, geometry: np.ndarray | None) -> torch.Tensor:
    """The model's logits for a batch, with its boxes' geometry (one row, or one per image) when it takes it."""
    if geometry is None or not isinstance(model, GeometryNet):
        return model(x)
    g = torch.as_tensor(np.asarray(geometry, np.float32), device=x.device).view(-1, GEOMETRY_INPUTS)
    return model(x, g.expand(x.shape[0], -1))


@torch.no_grad()
def occlusion_maps(
    model: nn.Module,
    images: np.ndarray,
    targets: np.ndarray,
    patch: int = 8,
    stride: int = 2,
    geometry: np.ndarray | None = None,
) -> np.ndarray:
    """(N, S, S) drop in the probability of each image's target class when a grey `patch` x `patch` square
    covers each pixel (averaged over the patch positions that cover it); positive = evidence for it.
    `geometry` (N x `GEOMETRY_INPUTS`) goes to a model that takes it, unchanged by the patch."""
    model.eval()
    device = next(model.parameters()).device
    n, size, _ = images.shape
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    maps = np.zeros((n, size, size))
    for i in range(n):
        x = torch.from_numpy(images[i]).float().div(255.0).to(device)
        box = None if geometry is None else geometry[i]
        base = F.softmax(_logits(model, x[None, None], box).float(), 1)[0, int(targets[i])].item()
        batch = x.repeat(len(starts) ** 2, 1, 1)
        positions = [(r, c) for r in starts for c in starts]
        for k, (r, c) in enumerate(positions):
            batch[k, r : r + patch, c : c + patch] = GREY
        probs = F.softmax(_logits(model, batch[:, None], box).float(), 1)[:, int(targets[i])].cpu().numpy()
        total = np.zeros((size, size))
        count = np.zeros((size, size))
        for (r, c), p in zip(positions, probs, strict=True):
            total[r : r + patch, c : c + patch] += base - p
            count[r : r + patch, c : c + patch] += 1
        maps[i] = total / np.maximum(count, 1)
    return maps


def saliency_maps(
    model: nn.Module, images: np.ndarray, targets: np.ndarray, geometry: np.ndarray | None = None
) -> np.ndarray:
    """(N, S, S) |d logit(target) / d pixel|: which pixels the decision is most sensitive to."""
    device = next(model.parameters()).device
    model.eval()
    x = torch.from_numpy(images).float().div(255).unsqueeze(1).to(device).requires_grad_(True)
    chosen = torch.from_numpy(np.asarray(targets, np.int64)).view(-1, 1).to(device)
    scores = _logits(model, x, geometry).gather(1, chosen).sum()
    (grad,) = torch.autograd.grad(scores, x)
    return grad.abs()[:, 0].detach().cpu().numpy()
