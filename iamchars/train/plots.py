"""The pictures practitioners look at after training: curves, confusion matrix, worst errors, first-layer
filters, activation maps and gradient saliency. Each function returns a matplotlib figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import io
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

from iamchars.fileio import atomic_open
from iamchars.train.explain import occlusion_maps, saliency_maps
from iamchars.train.inference import top_k
from iamchars.train.models import first_conv


def save_figure(figure: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getvalue())


def curves(history: list[dict[str, float]]) -> Figure:
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train (augmented, smoothed labels)")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.plot(epochs, [h["train_acc"] for h in history], label="train (augmented)")
    ax_acc.plot(epochs, [h["val_top1"] for h in history], label="validation top-1")
    ax_acc.plot(epochs, [h["val_top5"] for h in history], label="validation top-5", linestyle="--")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
    return fig


def confusion_heatmap(confusion: np.ndarray, chars: list[str]) -> Figure:
    """Row-normalised (recall per true class) so rare classes are as visible as frequent ones."""
    rows = confusion.sum(axis=1, keepdims=True)
    norm = np.divide(confusion, rows, out=np.zeros(confusion.shape, float), where=rows > 0)
    n = len(chars)
    fig, ax = plt.subplots(figsize=(max(6, n * 0.16), max(5, n * 0.16)))
    im = ax.imshow(norm, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(n), chars, fontsize=6)
    ax.set_yticks(range(n), chars, fontsize=6)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (test, row-normalised)")
    fig.colorbar(im, ax=ax, fraction=0.03)
    return fig


def worst_errors(images: np.ndarray, labels: np.ndarray, logits: torch.Tensor, chars: list[str], n: int = 48) -> Figure:
    """The most confident mistakes: true -> predicted (probability). One image of tiles with a caption over
    each, not one axes per tile: four times faster to draw, and every run draws it."""
    probs = torch.softmax(logits.float(), 1).cpu().numpy()
    preds = probs.argmax(1)
    wrong = np.flatnonzero(preds != labels)
    order = wrong[np.argsort(-probs[wrong, preds[wrong]], kind="stable")][:n]
    cols = 12
    rows = max(1, -(-len(order) // cols))
    h, w = images.shape[1:3]
    pad_x, pad_top = w // 4, h // 2  # room between tiles, and for each caption
    tiles = np.full((rows * (h + pad_top), cols * (w + pad_x)), 255, np.uint8)
    fig, ax = plt.subplots(figsize=(cols * 0.9, rows * 1.1))
    for k, i in enumerate(order):
        r, c = divmod(k, cols)
        y, x = r * (h + pad_top) + pad_top, c * (w + pad_x) + pad_x // 2
        tiles[y : y + h, x : x + w] = images[i]
        caption = f"{chars[labels[i]]}→{chars[preds[i]]} {probs[i, preds[i]]:.2f}"
        ax.text(x + w / 2, y - 2, caption, ha="center", va="bottom", fontsize=7)
    ax.imshow(tiles, cmap="gray", vmin=0, vmax=255)
    ax.axis("off")
    fig.suptitle("most confident errors (true→predicted probability)", fontsize=9)
    return fig


def filters(model: nn.Module) -> Figure:
    weights = first_conv(model).weight.detach().float().cpu().numpy()[:, 0]
    cols = 8
    rows = -(-len(weights) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.8, rows * 0.8), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, w in zip(axes.ravel(), weights, strict=False):
        lim = np.abs(w).max() or 1.0
        ax.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.suptitle("first-layer filters (red +, blue -)", fontsize=9)
    return fig


@torch.no_grad()
def activations(model: nn.Module, image: np.ndarray, char: str, maps: int = 16) -> Figure:
    """Feature maps after the first stage for one character."""
    device = next(model.parameters()).device
    x = torch.from_numpy(image).float().div(255).view(1, 1, *image.shape).to(device)
    features = getattr(model, "features", None)
    first = features[0] if features is not None else first_conv(model)
    out = first(x)[0].float().cpu().numpy()
    cols = 8
    rows = 1 + -(-min(maps, len(out)) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(image, cmap="gray")
    axes[0, 0].set_title(f"input '{char}'", fontsize=7)
    for ax, fmap in zip(axes.ravel()[cols:], out[:maps], strict=False):
        ax.imshow(fmap, cmap="magma")
    fig.suptitle("activation maps of the first layer", fontsize=9)
    return fig


EXPLAIN_UNITS = {
    "occlusion": "probability lost when covered",
    "saliency": "|gradient| of the probability",
}
"""What each explanation map's colour bar measures."""


def explanations(
    images: np.ndarray, titles: list[str], rows: dict[str, np.ndarray], heading: str, units: dict[str, str]
) -> Figure:
    """Each image (top row) with its maps below it, one row per map kind, labelled at the left. Every tile of a
    row shares one diverging colour scale centred on zero (red above, blue below), shown by the row's colour
    bar with its `units`, so that tiles compare with each other and a tile without negative values reads the
    same way as one with them."""
    n = len(images)
    fig, axes = plt.subplots(
        1 + len(rows),
        n,
        figsize=(max(n, 3) * 1.1 + 1.2, 1.2 * (1 + len(rows)) + 0.6),
        squeeze=False,
        layout="constrained",
    )
    for i in range(n):
        axes[0, i].imshow(images[i], cmap="gray", vmin=0, vmax=255)
        axes[0, i].set_title(titles[i], fontsize=6)
    for r, (name, maps) in enumerate(rows.items(), start=1):
        lim = float(np.abs(maps).max()) or 1.0
        shown = None
        for i in range(n):
            shown = axes[r, i].imshow(maps[i], cmap="RdBu_r", vmin=-lim, vmax=lim)
        if shown is not None:
            bar = fig.colorbar(shown, ax=list(axes[r, :]), shrink=0.9, pad=0.01)
            bar.set_label(units.get(name, name), fontsize=6)
            bar.ax.tick_params(labelsize=6)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("input", fontsize=7)
    for r, name in enumerate(rows, start=1):
        axes[r, 0].set_ylabel(name, fontsize=7)
    fig.suptitle(heading, fontsize=9)
    return fig


def explanation_sheet(model: nn.Module, batch: np.ndarray, names: list[str], chars: list[str]) -> Figure:
    """`iamchars explain`'s picture: each prepared image (N x S x S) under its name and top class, with the
    occlusion and saliency maps of that class below it."""
    ranked = top_k(model, batch, chars, 1)
    targets = np.array([chars.index(r[0][0]) for r in ranked])
    return explanations(
        batch,
        [f"{name}\n{r[0][0]!r} {r[0][1]:.2f}" for name, r in zip(names, ranked, strict=True)],
        {"occlusion": occlusion_maps(model, batch, targets), "saliency": saliency_maps(model, batch, targets)},
        "what the top class rests on (occlusion: red = covering it lowers its probability)",
        EXPLAIN_UNITS,
    )


def write_all(
    out: Path,
    model: nn.Module,
    history: list[dict[str, float]],
    test_images: np.ndarray,
    test_labels: np.ndarray,
    test_logits: torch.Tensor,
    confusion: np.ndarray,
    chars: list[str],
    test_geometry: np.ndarray | None = None,
) -> None:
    """Every picture of a run under OUT/plots; `test_geometry` goes with the test images to a model that
    takes each box's geometry."""
    plots = out / "plots"

    def geometry(rows: np.ndarray) -> np.ndarray | None:
        return None if test_geometry is None else test_geometry[rows]

    save_figure(curves(history), plots / "curves.png")
    if len(test_images):
        save_figure(confusion_heatmap(confusion, chars), plots / "confusion.png")
        save_figure(worst_errors(test_images, test_labels, test_logits, chars), plots / "worst_errors.png")
        save_figure(activations(model, test_images[0], chars[test_labels[0]]), plots / "activations.png")
        pick = np.linspace(0, len(test_images) - 1, min(10, len(test_images))).round().astype(int)
        save_figure(
            explanations(
                test_images[pick],
                [chars[t] for t in test_labels[pick]],
                {"saliency": saliency_maps(model, test_images[pick], test_labels[pick], geometry(pick))},
                "gradient saliency |d score(true class) / d pixel| for sample characters",
                EXPLAIN_UNITS,
            ),
            plots / "saliency.png",
        )
        preds = test_logits.argmax(1).cpu().numpy()
        right, wrong = np.flatnonzero(preds == test_labels)[:5], np.flatnonzero(preds != test_labels)[:5]
        pick = np.concatenate([right, wrong])
        save_figure(
            explanations(
                test_images[pick],
                [f"{chars[test_labels[i]]}→{chars[preds[i]]}" for i in pick],
                {
                    "occlusion": occlusion_maps(model, test_images[pick], test_labels[pick], geometry=geometry(pick)),
                    "saliency": saliency_maps(model, test_images[pick], test_labels[pick], geometry(pick)),
                },
                "what the decision for the true class rests on (true→predicted; left: correct, right: wrong); "
                "occlusion: red = covering it lowers the probability",
                EXPLAIN_UNITS,
            ),
            plots / "occlusion.png",
        )
    save_figure(filters(model), plots / "filters.png")
