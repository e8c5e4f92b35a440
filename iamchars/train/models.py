"""A small registry of CNNs for S x S greyscale characters, and a per-layer summary."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from iamchars.nn import conv_bn


class LeNet5(nn.Module):
    """LeCun et al. 1998, with ReLU and max-pooling: the classic baseline."""

    def __init__(self, num_classes: int, size: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2 if size < 32 else 0),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        side = ((size - (0 if size < 32 else 4)) // 2 - 4) // 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * side * side, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class VGGSmall(nn.Module):
    """VGG-style: pairs of 3x3 conv-BN-GELU, halving the resolution three times."""

    def __init__(self, num_classes: int, size: int = 32, widths: tuple[int, int, int] = (24, 48, 96)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for w in widths:
            layers += [conv_bn(cin, w), conv_bn(w, w), nn.MaxPool2d(2)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(cin, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.GELU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
        )
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class ResNetSmall(nn.Module):
    """An airbench-flavoured residual net: a stem at full resolution, then three conv-BN-GELU stages at 1/2,
    1/4 and 1/8 of it, each with one residual block. Few, wide layers keep it fast on a GPU; halving the
    resolution right after the stem keeps it affordable on a laptop CPU."""

    def __init__(self, num_classes: int, size: int = 32, widths: tuple[int, int, int] = (32, 64, 128)) -> None:
        super().__init__()
        stages: list[nn.Module] = [conv_bn(1, 24)]
        cin = 24
        for w in widths:
            stages += [nn.MaxPool2d(2), conv_bn(cin, w), ResidualBlock(w)]
            cin = w
        self.features = nn.Sequential(*stages)
        self.classifier = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


GEOMETRY_INPUTS = 4
"""What a `GeometryNet` takes beside the crop: the box's top, bottom and width in its line's ink standard
deviations (`dataset.crops.box_geometry`), and 1 where they are known (all 0 for an image from outside a line)."""


class GeometryNet(nn.Module):
    """A registered CNN whose pooled features meet an embedding of the box's geometry before the last layer.

    An EMNIST-style crop fills its tile whatever the letter's size, which erases what separates o/O, c/C or
    s/S; the box's height and place against the line's ink statistics keep it, at the cost of a few hundred
    weights. Without geometry (a user's own image) the model reads the crop alone, as trained to on the
    tenth of each batch whose geometry is dropped (`train.tensors.jitter_geometry`)."""

    def __init__(self, base: nn.Module, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.features = base.get_submodule("features")
        layers = list(base.get_submodule("classifier").children())
        head = layers[-1]
        assert isinstance(head, nn.Linear), "a registered model's classifier ends in a Linear layer"
        self.pool = nn.Sequential(*layers[:-1])
        self.geometry = nn.Sequential(nn.Linear(GEOMETRY_INPUTS, width), nn.GELU(), nn.Linear(width, width), nn.GELU())
        self.classifier = nn.Linear(head.in_features + width, num_classes)

    def forward(self, x: torch.Tensor, geometry: torch.Tensor | None = None) -> torch.Tensor:
        if geometry is None:
            geometry = x.new_zeros(x.shape[0], GEOMETRY_INPUTS)
        return self.classifier(torch.cat([self.pool(self.features(x)), self.geometry(geometry)], 1))


MODELS: dict[str, Callable[[int, int], nn.Module]] = {
    # name -> builder(num_classes, size). The contract every model keeps (tests/train/test_models.py checks
    # it): input N x 1 x S x S for S of 16 to 256, output N x num_classes logits; a `features` Sequential
    # (frozen layer by layer in fine-tuning, its first conv drawn in the plots) followed by a `classifier`
    # Sequential ending in a Linear (the geometry head replaces that last layer).
    "lenet5": LeNet5,
    "vgg": VGGSmall,
    "resnet": ResNetSmall,
}


def build_model(name: str, num_classes: int, size: int, geometry: bool = False) -> nn.Module:
    """A registered model; with `geometry`, one that also takes each box's geometry (`GeometryNet`)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    model = MODELS[name](num_classes, size)
    return GeometryNet(model, num_classes) if geometry else model


def first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


def summary(model: nn.Module, size: int) -> str:
    """Output shape and parameter count of every leaf layer, from one forward pass on a dummy batch."""
    rows: list[tuple[str, str, str, int]] = []
    hooks = []
    for name, module in model.named_modules():
        if not list(module.children()):
            hooks.append(
                module.register_forward_hook(
                    lambda m, _i, out, name=name: rows.append(
                        (name, type(m).__name__, str(tuple(out.shape[1:])), sum(p.numel() for p in m.parameters()))
                    )
                )
            )
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        model(torch.zeros(1, 1, size, size, device=device))
    model.train(was_training)
    for h in hooks:
        h.remove()
    width = max(len(r[0]) for r in rows) + 2
    lines = [f"{'layer':<{width}}{'type':<20}{'output':<18}{'params':>10}"]
    lines += [f"{n:<{width}}{t:<20}{s:<18}{p:>10,}" for n, t, s, p in rows]
    total = sum(p.numel() for p in model.parameters())
    lines.append(f"{'total':<{width}}{'':<20}{'':<18}{total:>10,}")
    return "\n".join(lines)
