from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from iamchars.cli import app
from iamchars.config import TrainConfig, load_config
from iamchars.dataset.export import build_dataset
from iamchars.nn import save_state
from iamchars.train.checkpoints import ensure_best, load_checkpoint, model_from_checkpoint
from iamchars.train.engine import TrainingDiverged, train
from iamchars.train.evaluation import predict_logits
from iamchars.train.inference import export_model, prepare_image, top_k
from iamchars.train.metrics import case_pair_errors, confusion_matrix, per_class, topk_correct
from iamchars.train.models import MODELS, GeometryNet, build_model, summary
from iamchars.train.tensors import Dataset, Split, augment, jitter_geometry, load_dataset, to_float

pytestmark = pytest.mark.slow  # trainings

runner = CliRunner()
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def dataset_dir(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("train") / "ds"
    cfg = load_config(
        None, ["export.workers=1", "export.write_png=false", "export.include_err=true", 'segment.method="refined"']
    )
    build_dataset(synth_corpus, out, cfg, progress=False)
    return out


def _cfg(**kw: object) -> TrainConfig:
    base = dict(
        model="lenet5",
        epochs=6,
        batch_size=64,
        lr=3e-3,
        augment=False,
        label_smoothing=0.0,
        channels_last=False,
        seed=0,
        threads=0,
    )
    return TrainConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_a_tiny_run_learns(dataset_dir: Path, tmp_path: Path) -> None:
    data = load_dataset(dataset_dir, CPU)
    assert 300 < len(data.train) < 3000 and data.num_classes == 62
    result = train(data, tmp_path, _cfg(epochs=8), progress=False, log=lambda _m: None)
    history = [
        json.loads(json.dumps(h))
        for h in torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)["history"]
    ]
    assert history[-1]["train_loss"] < 0.6 * history[0]["train_loss"]
    chance = 1 / data.num_classes
    assert history[-1]["train_acc"] > 0.5
    assert result["metrics"]["val_top1"] > 10 * chance
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"top1", "top5", "per_class", "confusion"} <= set(metrics["test"])
    assert metrics["test"]["top5"] >= metrics["test"]["top1"]
    assert (tmp_path / "history.csv").read_text().count("\n") == 9


def test_resume_continues_from_the_saved_epoch(dataset_dir: Path, tmp_path: Path) -> None:
    data = load_dataset(dataset_dir, CPU)
    cfg = _cfg(epochs=2, augment=True, model="resnet", batch_size=128)
    full = train(data, tmp_path / "full", cfg, progress=False, log=lambda _m: None)

    def killed_after_epoch_1(message: str) -> None:
        if message.startswith("epoch   1/2"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(data, tmp_path / "cut", cfg, progress=False, log=killed_after_epoch_1)
    assert torch.load(tmp_path / "cut" / "checkpoints" / "last.pt", weights_only=False)["epoch"] == 0
    messages: list[str] = []
    resumed = train(data, tmp_path / "cut", cfg, resume=True, progress=False, log=messages.append)
    assert any("resumed" in m and "epoch 1" in m for m in messages)
    assert next(m for m in messages if m.startswith("epoch")).startswith("epoch   2/2")
    a = torch.load(tmp_path / "full" / "checkpoints" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "cut" / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["metrics"]["test"]["top1"] == full["metrics"]["test"]["top1"]


def test_best_pt_is_remade_from_last_pt_whatever_the_moment_of_the_stop(tmp_path: Path) -> None:
    def state(epoch: int, best_epoch: int, weight: float, best_weight: float | None) -> dict:
        best_weights = None if best_weight is None else {"model": {"w": torch.tensor([best_weight])}, "ema": None}
        return {
            "model": {"w": torch.tensor([weight])},
            "ema": None,
            "best_weights": best_weights,
            "epoch": epoch,
            "best": {"val_top1": 0.5, "epoch": best_epoch},
            "config": {},
            "classes": {},
            "image_size": 32,
        }

    folder = tmp_path / "checkpoints"
    save_state(folder / "last.pt", state(4, 3, 5.0, 3.0))  # stopped before best.pt of epoch 3 was written
    ensure_best(folder)
    best = load_checkpoint(folder / "best.pt")
    assert best["epoch"] == 2 and float(best["model"]["w"]) == 3.0
    (folder / "best.pt").write_bytes(b"half a file")
    ensure_best(folder)
    assert float(load_checkpoint(folder / "best.pt")["model"]["w"]) == 3.0
    save_state(folder / "last.pt", state(5, 6, 6.0, None))  # the last epoch was the best: best.pt is last.pt
    ensure_best(folder)
    assert float(load_checkpoint(folder / "best.pt")["model"]["w"]) == 6.0
    before = (folder / "best.pt").read_bytes()
    ensure_best(folder)  # consistent: left as it is
    assert (folder / "best.pt").read_bytes() == before


def test_a_nan_is_caught_with_a_clear_message(dataset_dir: Path, tmp_path: Path) -> None:
    data = load_dataset(dataset_dir, CPU)
    with pytest.raises(TrainingDiverged, match="lower --lr"):
        train(data, tmp_path, _cfg(optimizer="sgd", lr=1e12, schedule="cosine"), progress=False, log=lambda _m: None)


def test_predict_returns_the_right_top_k(dataset_dir: Path, tmp_path: Path) -> None:
    data = load_dataset(dataset_dir, CPU)
    train(data, tmp_path, _cfg(epochs=3), progress=False, log=lambda _m: None)
    model, ckpt = model_from_checkpoint(tmp_path / "checkpoints" / "best.pt", CPU)
    images = data.test.images[:6].numpy()
    ranked = top_k(model, images, data.class_chars, k=4)
    probs = torch.softmax(predict_logits(model, data.test.images[:6]), 1)
    for row, p in zip(ranked, probs, strict=True):
        expected = torch.argsort(p, descending=True)[:4]
        assert [c for c, _ in row] == [data.class_chars[int(i)] for i in expected]
        assert [v for _, v in row] == pytest.approx(p[expected].tolist(), abs=1e-5)
        assert all(a >= b for (_, a), (_, b) in itertools.pairwise(row))
    # the CLI on a PNG of a dataset crop and on the same character as dark ink on paper
    tile = images[0]
    cv2.imwrite(str(tmp_path / "crop.png"), tile)
    cv2.imwrite(str(tmp_path / "paper.png"), cv2.resize(255 - tile, (64, 80)))
    assert np.array_equal(prepare_image(tile, 32), tile)
    result = runner.invoke(
        app,
        [
            "predict",
            "--checkpoint",
            str(tmp_path / "checkpoints" / "best.pt"),
            str(tmp_path / "crop.png"),
            str(tmp_path / "paper.png"),
            "-k",
            "3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert [r["char"] for r in answer[0]["top"]] == [c for c, _ in ranked[0][:3]]
    assert len(answer[1]["top"]) == 3 and answer[1]["top"][0]["p"] <= 1.0
    assert ckpt["image_size"] == 32


def test_models_summaries_and_export(tmp_path: Path) -> None:
    for name in MODELS:
        for size in (28, 32):
            model = build_model(name, 47, size)
            assert model(torch.zeros(2, 1, size, size)).shape == (2, 47)
        text = summary(build_model(name, 47, 32), 32)
        total = sum(p.numel() for p in build_model(name, 47, 32).parameters())
        assert text.splitlines()[-1].endswith(f"{total:,}") and "(47,)" in text
    model = build_model("resnet", 10, 32).eval()
    path = export_model(model, 32, tmp_path / "m.pt2", "pt2")
    loaded = torch.export.load(str(path)).module()
    x = torch.rand(5, 1, 32, 32)
    assert torch.allclose(loaded(x), model(x), atol=1e-5)
    with pytest.raises(ValueError, match="unknown export format"):
        export_model(model, 32, tmp_path / "m.bin", "tflite")


def test_onnx_export_round_trips_through_onnxruntime(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra (pip install -e .[onnx]) is not installed")
    model = build_model("resnet", 10, 32).eval()
    path = export_model(model, 32, tmp_path / "m.onnx", "onnx")
    assert path.is_file() and (tmp_path / "m.onnx.data").is_file()  # the weights, beside the graph
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(4, 1, 32, 32)
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert np.allclose(got, model(x).detach().numpy(), atol=1e-4)


def _rings(labels: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """The same ring for every label, a little noisy: what an EMNIST-style crop makes of both o and O."""
    ring = cv2.circle(np.zeros((32, 32), np.uint8), (16, 16), 11, 255, 3)
    noisy = ring[None].astype(np.int16) + rng.integers(-40, 40, (len(labels), 32, 32))
    return torch.from_numpy(np.clip(noisy, 0, 255).astype(np.uint8))


def _o_and_capital_o(rng: np.random.Generator, n: int) -> Split:
    labels = rng.integers(0, 2, n)
    top = np.where(labels == 1, -2.2, -1.0) + rng.normal(0, 0.15, n)  # O reaches the ascender line
    geometry = np.stack([top, 1.4 + rng.normal(0, 0.1, n), 1.2 - top + rng.normal(0, 0.1, n), np.ones(n)], 1)
    ids = np.array([f"c{i}" for i in range(n)])
    return Split(_rings(labels, rng), torch.from_numpy(labels), ids, torch.from_numpy(geometry.astype(np.float32)))


def test_box_geometry_tells_apart_letters_that_crops_make_alike(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    classes = {"num_classes": 2, "classes": [{"char": "o", "label": 0}, {"char": "O", "label": 1}]}
    data = Dataset(_o_and_capital_o(rng, 768), _o_and_capital_o(rng, 256), _o_and_capital_o(rng, 256), classes, 32)
    quiet = {"progress": False, "log": lambda _m: None}
    crops_only = train(data, tmp_path / "crop", _cfg(epochs=4), **quiet)["metrics"]["test"]
    cfg = _cfg(epochs=4, geometry=True, augment=True)
    with_geometry = train(data, tmp_path / "geometry", cfg, **quiet)["metrics"]["test"]
    assert crops_only["top1"] < 0.7 and crops_only["case_pair_errors"] > 60  # a coin toss
    assert with_geometry["top1"] > 0.95 and with_geometry["case_pair_errors"] < 10
    model, _ = model_from_checkpoint(tmp_path / "geometry" / "checkpoints" / "best.pt", CPU)
    assert isinstance(model, GeometryNet)  # rebuilt from its checkpoint as trained
    assert top_k(model, data.test.images[:3].numpy(), ["o", "O"], 2)[0][0][0] in "oO"  # a user's image: no line
    path = export_model(model, 32, tmp_path / "m.pt2", "pt2")
    x, g = to_float(data.test.images[:5]), data.test.geometry[:5]
    assert torch.allclose(torch.export.load(str(path)).module()(x, g), model(x, g), atol=1e-5)
    no_geometry = Dataset(
        *(Split(s.images, s.labels, s.char_ids) for s in (data.train, data.val, data.test)), classes, 32
    )
    said: list[str] = []
    old = train(no_geometry, tmp_path / "old", cfg, progress=False, log=said.append)  # a dataset built before
    assert any("no box geometry" in m and "rebuild it" in m for m in said)
    assert not isinstance(old["model"], GeometryNet) and not old["metrics"]["config"]["geometry"]


def test_geometry_jitter_drops_a_share_and_keeps_the_known_flag() -> None:
    geometry = torch.tensor([[-1.0, 1.5, 1.0, 1.0]]).repeat(4000, 1)
    jittered = jitter_geometry(geometry, torch.Generator().manual_seed(0), sigma=0.1, drop=0.25)
    dropped = (jittered == 0).all(1)
    assert 0.2 < dropped.float().mean() < 0.3
    kept = jittered[~dropped]
    assert (kept[:, 3] == 1).all() and 0.08 < float((kept[:, :3] - geometry[0, :3]).std()) < 0.12


def test_augment_keeps_shape_range_and_is_seeded() -> None:
    x = to_float(torch.randint(0, 256, (16, 32, 32), dtype=torch.uint8))
    a = augment(x, torch.Generator().manual_seed(1))
    b = augment(x, torch.Generator().manual_seed(1))
    c = augment(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_metrics_helpers() -> None:
    logits = torch.tensor([[3.0, 2.0, 1.0], [1.0, 3.0, 2.0], [1.0, 2.0, 3.0]])
    labels = torch.tensor([0, 2, 0])
    assert topk_correct(logits, labels, (1, 2)) == {1: 1, 2: 2}
    cm = confusion_matrix(np.array([0, 2, 0]), np.array([0, 1, 2]), 3)
    assert cm.tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    precision, recall, support = per_class(cm)
    assert precision[0] == 1.0 and recall[0] == 0.5 and np.isnan(recall[1]) and support.tolist() == [2, 0, 1]
    # classes o, O, x: o read as O twice, O as o once, o as x once; only the first three are case-pair errors
    cm = confusion_matrix(np.array([0, 0, 0, 1, 1, 2]), np.array([1, 1, 2, 0, 1, 2]), 3)
    assert case_pair_errors(cm, ["o", "O", "x"]) == 3 and case_pair_errors(cm, ["o", "p", "x"]) == 0


@pytest.mark.parametrize("flags", [[], ["--geometry"]])
def test_train_cli_writes_metrics_plots_and_checkpoints(dataset_dir: Path, tmp_path: Path, flags: list[str]) -> None:
    out = tmp_path / "run"
    args = [
        "train",
        "--data",
        str(dataset_dir),
        "--out",
        str(out),
        "--model",
        "lenet5",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--no-progress",
        "--set",
        "train.channels_last=false",
        *flags,
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    device = "cuda" if torch.cuda.is_available() else "cpu"  # "auto": the GPU when there is one
    assert f"device: {device}" in result.output and "test top-1" in result.output
    assert ("geometry.0" in result.output) == bool(flags)  # the summary shows the geometry input's layers
    assert json.loads((out / "metrics.json").read_text())["config"]["geometry"] == bool(flags)
    for name in ("curves", "confusion", "worst_errors", "filters", "activations", "saliency", "occlusion"):
        assert cv2.imread(str(out / "plots" / f"{name}.png")) is not None, name
    assert (out / "checkpoints" / "best.pt").is_file() and (out / "checkpoints" / "last.pt").is_file()
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--checkpoint",
            str(out / "checkpoints" / "best.pt"),
            "--data",
            str(dataset_dir),
            "--out",
            str(tmp_path / "eval.json"),
        ],
    )
    assert result.exit_code == 0 and "top-1" in result.output
    assert json.loads((tmp_path / "eval.json").read_text())["samples"] > 0
    predictions = (tmp_path / "eval_predictions.csv").read_text().splitlines()
    assert predictions[0] == "char_id,true,predicted,probability"
    assert len(predictions) - 1 == json.loads((tmp_path / "eval.json").read_text())["samples"]
    crops = tmp_path / "crops"
    crops.mkdir()
    for i, tile in enumerate(load_dataset(dataset_dir, CPU).test.images[:3].numpy()):
        cv2.imwrite(str(crops / f"c{i}.png"), tile)
    result = runner.invoke(
        app,
        ["explain", "--checkpoint", str(out / "checkpoints" / "best.pt"), str(crops), "--out", str(tmp_path / "x.png")],
    )
    assert result.exit_code == 0 and "explained 3 image(s)" in result.output, result.output
    assert cv2.imread(str(tmp_path / "x.png")).shape[0] > 100
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "nothing"), "--out", str(out)])
    assert result.exit_code == 1 and "iamchars build-dataset" in result.output


def test_early_stopping_stops_when_validation_stalls(dataset_dir: Path, tmp_path: Path) -> None:
    data = load_dataset(dataset_dir, CPU)
    messages: list[str] = []
    train(data, tmp_path, _cfg(epochs=6, lr=0.0, patience=2), progress=False, log=messages.append)
    assert sum(m.startswith("epoch") for m in messages) == 3  # best at epoch 1, then two without progress
    assert any(m.startswith("early stop") for m in messages)


def test_cpu_count_respects_a_cgroup_quota(tmp_path: Path) -> None:
    from iamchars.parallel import _cgroup_cpu_quota, resolve_workers, usable_cpus

    assert _cgroup_cpu_quota(tmp_path) is None  # no cpu.max
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert _cgroup_cpu_quota(tmp_path) is None
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert _cgroup_cpu_quota(tmp_path) == 1.5
    assert 1 <= usable_cpus() <= (os.cpu_count() or 1)
    assert resolve_workers(0, 1) == 1 and resolve_workers(8, 3) == 3 and resolve_workers(2, 100) == 2


def test_occlusion_finds_the_pixels_a_model_looks_at() -> None:
    from iamchars.train.explain import occlusion_maps, saliency_maps

    class TopLeftDetector(torch.nn.Module):
        """Class 1 when the top-left 8 x 8 corner is bright, class 0 otherwise."""

        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            score = (x[:, 0, :8, :8].mean(dim=(1, 2)) - 0.5) * 20 + self.w
            return torch.stack([-score, score], 1)

    images = np.zeros((1, 32, 32), np.uint8)
    images[0, :8, :8] = 255
    occlusion = occlusion_maps(TopLeftDetector(), images, np.array([1]))[0]
    assert occlusion[0, 0] > 0.4 and (occlusion[:8, :8] > 0).all() and abs(occlusion[20:, 20:]).max() < 1e-6
    saliency = saliency_maps(TopLeftDetector(), images, np.array([1]))[0]
    assert saliency[:8, :8].min() > 0 and saliency[8:, 8:].max() == 0


def test_balanced_sampling_draws_rare_classes_more_often() -> None:
    from iamchars.train.tensors import balanced_weights, batches

    labels = torch.tensor([0] * 900 + [1] * 100)
    gen = torch.Generator().manual_seed(0)
    drawn = torch.cat(list(batches(1000, 100, gen, CPU, weights=balanced_weights(labels))))
    share = float((labels[drawn] == 1).float().mean())
    assert 0.2 < share < 0.3  # sqrt balancing: 100 ** 0.5 / (900 ** 0.5 + 100 ** 0.5) = 0.25; 0.10 without
    equal = torch.cat(list(batches(1000, 100, gen, CPU, weights=balanced_weights(labels, power=1.0))))
    assert 0.45 < float((labels[equal] == 1).float().mean()) < 0.55


def test_fine_tuning_starts_from_another_runs_weights(dataset_dir: Path, tmp_path: Path) -> None:
    data = load_dataset(dataset_dir, CPU)
    train(data, tmp_path / "pre", _cfg(epochs=1, model="resnet"), progress=False, log=lambda _m: None)
    pre = torch.load(tmp_path / "pre" / "checkpoints" / "last.pt", weights_only=False)
    pre["classes"]["num_classes"] = 10  # a run on another class set: its head does not fit
    pre["model"]["classifier.2.weight"] = pre["model"]["classifier.2.weight"][:10]
    pre["model"]["classifier.2.bias"] = pre["model"]["classifier.2.bias"][:10]
    torch.save(pre, tmp_path / "other.pt")
    messages: list[str] = []
    cfg = _cfg(epochs=1, model="resnet", init=str(tmp_path / "other.pt"), freeze=2)
    train(data, tmp_path / "fine", cfg, progress=False, log=messages.append)
    assert any("new: classifier.2.weight, classifier.2.bias" in m for m in messages)
    assert any("froze the first 2 of" in m for m in messages)
    fine = torch.load(tmp_path / "fine" / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert torch.equal(fine["features.0.0.weight"], pre["model"]["features.0.0.weight"])  # loaded and frozen
    assert torch.equal(fine["features.2.0.weight"], pre["model"]["features.2.0.weight"])
    assert not torch.equal(fine["features.3.body.0.weight"], pre["model"]["features.3.body.0.weight"])  # trained
    assert fine["classifier.2.weight"].shape[0] == data.num_classes


def test_zoo_trains_every_model_into_one_table(dataset_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "zoo"
    args = ["zoo", "--data", str(dataset_dir), "--out", str(out), "--epochs", "1", "--batch-size", "64"]
    result = runner.invoke(app, [*args, "--set", "train.channels_last=false"])
    assert result.exit_code == 0, result.output
    table = (out / "zoo.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith(("| model", "| ---"))]
    assert sorted(r.split(" | ")[0][2:] for r in rows) == sorted(MODELS)
    assert all(r.split(" | ")[1].replace(",", "").isdigit() for r in rows)
    assert cv2.imread(str(out / "zoo.png")) is not None and (out / "lenet5" / "metrics.json").is_file()
    assert runner.invoke(app, [*args, "--models", "lenet5,alexnet"]).exit_code == 2


def test_torchrun_trains_on_two_processes_and_resumes_on_one(dataset_dir: Path, tmp_path: Path) -> None:
    """DistributedDataParallel on the gloo backend, as `torchrun --nproc_per_node=2 -m iamchars.cli train`."""
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    out = tmp_path / "run"
    args = ["--data", str(dataset_dir), "--out", str(out), "--model", "lenet5", "--batch-size", "32"]
    args += ["--no-progress", "--set", "train.channels_last=false", "--set", "train.augment=false"]
    args += ["--device", "cpu"]  # gloo, on any machine (a GPU machine too)
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}"]
    done = subprocess.run(
        [*launch, "-m", "iamchars.cli", "train", *args, "--threads", "1", "--epochs", "2"],  # a core each
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("best epoch") == 1  # rank 0 alone reports
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    for name in ("curves", "confusion", "occlusion", "saliency"):
        assert (out / "plots" / f"{name}.png").is_file(), name
    history = torch.load(out / "checkpoints" / "last.pt", weights_only=False)["history"]
    assert len(history) == 2 and history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_top1"] > 3 / 62  # learns: well above chance
    result = runner.invoke(app, ["train", *args, "--epochs", "3", "--resume", "--no-plots"])  # one process now
    assert result.exit_code == 0, result.output
    assert "resumed" in result.output and json.loads((out / "metrics.json").read_text())["world_size"] == 1
    assert len(torch.load(out / "checkpoints" / "last.pt", weights_only=False)["history"]) == 3


def test_more_torchrun_processes_than_gpus_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from iamchars.errors import UserError
    from iamchars.train.distributed import context

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UserError, match=r"--nproc_per_node=1, or --device cpu"):
        context("auto")


def test_explanation_pictures_share_one_diverging_scale_per_row_with_a_colour_bar() -> None:
    from iamchars.train.plots import EXPLAIN_UNITS, explanations

    images = np.zeros((3, 8, 8), np.uint8)
    maps = {
        "occlusion": np.stack([np.full((8, 8), 0.2), np.linspace(-0.1, 0.05, 64).reshape(8, 8), np.zeros((8, 8))]),
        "saliency": np.abs(np.random.default_rng(0).normal(size=(3, 8, 8))),
    }
    fig = explanations(images, ["a.png", "b.png", "c.png"], maps, "heading", EXPLAIN_UNITS)
    rows = [[ax.images[0] for ax in fig.axes[:9] if ax.images][3 * r : 3 * r + 3] for r in (1, 2)]
    for row, name in zip(rows, maps, strict=True):
        lims = {im.get_clim() for im in row}
        lim = float(np.abs(maps[name]).max())
        assert lims == {(-lim, lim)} and {im.get_cmap().name for im in row} == {"RdBu_r"}, name
    labels = sorted(ax.get_ylabel() for ax in fig.axes[9:])
    assert labels == sorted(EXPLAIN_UNITS.values())  # one colour bar per row, saying what it measures
