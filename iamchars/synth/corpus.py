"""`iamchars synth`: forms rendered page by page, cut into IAM's line and word images, with true boxes.

Every form is a pure function of (seed, form index): workers can run in any order and the same arguments
always give the same bytes.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from iamchars.config import PipelineConfig, SplitConfig, SynthConfig
from iamchars.errors import UserError
from iamchars.fileio import atomic_open, inside, write_png, write_table
from iamchars.fonts import FontMetrics, load_font
from iamchars.iam.corpus import image_path
from iamchars.iam.splits import hash_split
from iamchars.parallel import ordered_map, resolve_workers
from iamchars.progress import progress_bar
from iamchars.synth.render import (
    RenderedLine,
    WriterStyle,
    char_boxes,
    render_line,
    warp_line,
    writer_style,
)
from iamchars.synth.text import fill_lines, make_faker, pos_tag

PAGE_WIDTH = 2479
LEFT_MARGIN = 250
TOP = 700
GT_COLUMNS = ["word_id", "char_index", "char", "x", "y", "w", "h"]
ALIGNMENT_FONT = "dancing-script"


@dataclass
class FormResult:
    form_row: str
    line_rows: list[str] = field(default_factory=list)
    word_rows: list[str] = field(default_factory=list)
    gt_rows: list[tuple[str, int, str, int, int, int, int]] = field(default_factory=list)
    line_ids: list[str] = field(default_factory=list)


def _rng(*keys: object) -> np.random.Generator:
    digest = hashlib.sha256(":".join(map(str, keys)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def form_id(index: int) -> str:
    return f"s{index // 1000:02d}-{index % 1000:03d}"


def writer_of(index: int, forms_per_writer: int) -> int:
    return index // max(1, forms_per_writer)


def writer_font(cfg: SynthConfig, writer: int) -> str:
    fonts = list(cfg.fonts)
    if not fonts:
        raise ValueError("synth.fonts is empty")
    if ALIGNMENT_FONT in fonts:
        raise ValueError(f"{ALIGNMENT_FONT} aligns the segmentation and can never be a synthetic writer's font")
    return fonts[int(_rng(cfg.seed, "font", writer).integers(len(fonts)))]


def _render_until_whole(
    tokens: list[str], style: WriterStyle, font: FontMetrics, rng: np.random.Generator
) -> tuple[RenderedLine, np.ndarray]:
    """Render and warp; a character whose ink another glyph fully covered would have no true box, so such a
    line is drawn again (a handful of tries is always enough in practice)."""
    for _ in range(8):
        line = warp_line(render_line(tokens, style, font, rng), style, rng)
        boxes = char_boxes(line)
        if (boxes[:, 2] > 0).all():
            return line, boxes
    raise RuntimeError(f"could not render {' '.join(tokens)!r} with every character visible")


def _ink_threshold(crop: np.ndarray) -> int:
    value, _ = cv2.threshold(crop, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return int(value)


def render_form(index: int, cfg: SynthConfig) -> tuple[FormResult, dict[str, np.ndarray]]:
    """One form: its page, its IAM rows, and the line and word images (by relative path)."""
    fid = form_id(index)
    writer = writer_of(index, cfg.forms_per_writer)
    font_name = writer_font(cfg, writer)
    style = writer_style(font_name, _rng(cfg.seed, "writer", writer))
    font = load_font(font_name, style.size, style.stroke)
    rng = _rng(cfg.seed, "form", index)
    fake = make_faker(int(rng.integers(2**31)))
    usable = PAGE_WIDTH - 2 * LEFT_MARGIN
    lines_tokens = fill_lines(
        fake,
        rng,
        cfg.lines_per_form,
        lambda t: sum(font.advance(c) + style.letter_spacing for c in t),
        style.word_gap,
        usable * 0.92,
    )
    spacing = int(style.size * rng.uniform(2.0, 2.5))
    strips = []
    for i, tokens in enumerate(lines_tokens):
        line, boxes = _render_until_whole(tokens, style, font, rng)
        ox = LEFT_MARGIN - int(style.size * 0.8) + int(rng.integers(-30, 31))
        oy = TOP + i * spacing - line.baseline + int(rng.integers(-8, 9))
        strips.append((tokens, line, boxes, ox, oy))
    height = max(oy + ln.alpha.shape[0] for _, ln, _, _, oy in strips) + 150
    width = max(PAGE_WIDTH, max(ox + ln.alpha.shape[1] for _, ln, _, ox, _ in strips))
    ink_alpha = np.zeros((height, width), np.uint8)
    for _, line, _, ox, oy in strips:
        region = ink_alpha[oy : oy + line.alpha.shape[0], ox : ox + line.alpha.shape[1]]
        np.maximum(region, line.alpha, out=region)
    page = _paper(ink_alpha, style.ink, rng)

    result = FormResult(form_row="")
    images: dict[str, np.ndarray] = {}
    n_words = n_words_ok = n_ok = 0
    for i, (tokens, line, boxes, ox, oy) in enumerate(strips):
        lid = f"{fid}-{i:02d}"
        boxes = boxes + np.array([ox, oy, 0, 0])
        owners = np.array(line.owners)
        word_boxes = []
        for t, token in enumerate(tokens):
            b = boxes[owners[:, 0] == t]
            x0, y0 = b[:, 0].min(), b[:, 1].min()
            x1, y1 = (b[:, 0] + b[:, 2]).max(), (b[:, 1] + b[:, 3]).max()
            word_boxes.append([int(x0), int(y0), int(x1 - x0), int(y1 - y0)])
            for c, ch in enumerate(token):
                bx = b[c]
                result.gt_rows.append((f"{lid}-{t:02d}", c, ch, int(bx[0]), int(bx[1]), int(bx[2]), int(bx[3])))
        wb = np.array(word_boxes)
        lx, ly = wb[:, 0].min(), wb[:, 1].min()
        lw, lh = (wb[:, 0] + wb[:, 2]).max() - lx, (wb[:, 1] + wb[:, 3]).max() - ly
        flag = "err" if rng.random() < cfg.err_rate else "ok"
        if flag == "err":  # IAM's err lines hold badly segmented words: truncate one word's box
            long_words = [t for t, tok in enumerate(tokens) if len(tok) > 1] or [0]
            t = long_words[int(rng.integers(len(long_words)))]
            word_boxes[t][2] = max(1, int(word_boxes[t][2] * 0.7))
        line_crop = page[ly : ly + lh, lx : lx + lw]
        gray = _ink_threshold(line_crop)
        components = cv2.connectedComponents((line_crop < gray).astype(np.uint8))[0] - 1
        result.line_rows.append(f"{lid} {flag} {gray} {components} {lx} {ly} {lw} {lh} {'|'.join(tokens)}")
        result.line_ids.append(lid)
        images[str(image_path(Path(), "lines", lid))] = line_crop
        for t, (token, (x, y, w, h)) in enumerate(zip(tokens, word_boxes, strict=True)):
            wid = f"{lid}-{t:02d}"
            result.word_rows.append(f"{wid} {flag} {gray} {x} {y} {w} {h} {pos_tag(token)} {token}")
            images[str(image_path(Path(), "words", wid))] = page[y : y + h, x : x + w]
        n_words += len(tokens)
        if flag == "ok":
            n_ok += 1
            n_words_ok += len(tokens)
    seg = "all" if n_ok == len(strips) else "prt"
    n_sentences = max(1, sum(tok in (".", "?", "!") for tokens, *_ in strips for tok in tokens))
    result.form_row = f"{fid} {writer:03d} {n_sentences} {seg} {len(strips)} {n_ok} {n_words} {n_words_ok}"
    return result, images


def _paper(ink_alpha: np.ndarray, ink: int, rng: np.random.Generator) -> np.ndarray:
    """IAM-like grey levels: light, uneven paper; dark but not black ink; sensor noise and a little blur."""
    h, w = ink_alpha.shape
    paper = float(rng.uniform(232, 250))
    shade = cv2.resize(
        rng.normal(0, 3, size=(h // 256 + 2, w // 256 + 2)).astype(np.float32),
        (w, h),
        interpolation=cv2.INTER_CUBIC,
    )
    background = paper + shade
    a = ink_alpha.astype(np.float32) / 255.0
    page = background - a * (background - ink)
    page += rng.standard_normal((h, w), dtype=np.float32) * np.float32(rng.uniform(2.0, 5.0))
    blurred = cv2.GaussianBlur(page, (3, 3), float(rng.uniform(0.4, 0.9)))
    return np.clip(blurred, 0, 255).astype(np.uint8)


def _form_job(args: tuple[int, SynthConfig, str]) -> FormResult:
    index, cfg, out = args
    result, images = render_form(index, cfg)
    for rel, image in images.items():
        write_png(inside(Path(out), rel), image)
    return result


IAM_HEADER = "#--- {name} (synthetic, iamchars) ---#\n# format as IAM's; see iamchars/synth\n"


CORPUS_FILES = ("ascii", "lines", "words", "xml", "split", "task", "chars_gt.csv", "preview.png")
"""What an IAM-layout corpus holds; `synth --force` removes these, so no file of the old corpus stays."""


def clear_corpus(out: Path, force: bool) -> None:
    """Make room for a new corpus in `out`: a corpus already there is refused, or with `force` removed
    (only the files a corpus holds; anything else in the folder stays)."""
    held = [name for name in CORPUS_FILES if (out / name).exists() or (out / name).is_symlink()]
    if held and not force:
        raise UserError(
            f"--out {out}: already holds a corpus ({', '.join(held)}); --force replaces it, or choose another --out"
        )
    for name in held:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()


def write_corpus(out: Path, cfg: SynthConfig, split: SplitConfig, progress: bool = True) -> dict[str, int]:
    """Write the whole corpus; returns counts. Workers render forms in parallel; files are written in form
    order, so the output does not depend on scheduling."""
    for writer in range(writer_of(max(cfg.forms - 1, 0), cfg.forms_per_writer) + 1):
        load_font(writer_font(cfg, writer), 32)  # a bad font list fails here, before anything is written
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(i, cfg, str(out)) for i in range(cfg.forms)]
    results = []
    with progress_bar(total=cfg.forms, desc="synth forms", unit="form", disable=not progress) as bar:
        for result in ordered_map(_form_job, jobs, resolve_workers(cfg.workers, len(jobs))):
            results.append(result)
            bar.update()
    ascii_dir = out / "ascii"
    for name, rows in (
        ("forms.txt", [r.form_row for r in results]),
        ("lines.txt", [row for r in results for row in r.line_rows]),
        ("words.txt", [row for r in results for row in r.word_rows]),
    ):
        with atomic_open(ascii_dir / name) as handle:
            handle.write(IAM_HEADER.format(name=name) + "\n".join(rows) + "\n")
    gt = pd.DataFrame([row for r in results for row in r.gt_rows], columns=GT_COLUMNS)
    write_table(gt, out / "chars_gt.csv")
    writers = sorted({r.form_row.split()[1] for r in results})
    by_writer = hash_split(writers, split.ratios, split.seed)
    task = {"trainset.txt": "train", "validationset1.txt": "val", "testset.txt": "test"}
    for name, wanted in task.items():
        ids = [lid for r in results for lid in r.line_ids if by_writer[r.form_row.split()[1]] == wanted]
        with atomic_open(out / "split" / name) as handle:
            handle.write("".join(f"{lid}\n" for lid in ids))
    return {
        "forms": len(results),
        "writers": len(writers),
        "lines": sum(len(r.line_rows) for r in results),
        "words": sum(len(r.word_rows) for r in results),
        "characters": len(gt),
    }


def preview(root: Path, gt: pd.DataFrame, lines: pd.DataFrame, n_lines: int = 6) -> np.ndarray:
    """True boxes drawn over the first lines of a corpus, to check by eye that they sit on their letters."""
    from iamchars.fileio import read_gray
    from iamchars.viz.overlay import caption, draw_boxes, stack_rows

    gt = gt.assign(line_id=gt["word_id"].str.rsplit("-", n=1).str[0])
    panels = []
    for row in lines.head(n_lines).itertuples():
        image = read_gray(image_path(root, "lines", str(row.line_id)))
        boxes = gt.loc[gt["line_id"] == row.line_id, ["x", "y", "w", "h"]].to_numpy() - [row.x, row.y, 0, 0]
        panels.append(caption(draw_boxes(image, boxes), f"{row.line_id}: {row.text}"))
    return stack_rows(panels)


def write_preview(root: Path, cfg: PipelineConfig) -> Path:
    """`synth --preview`: the corpus's true boxes over its first lines, written to ROOT/preview.png."""
    from iamchars.iam.corpus import load_corpus

    corpus = load_corpus(root, cfg.parse, cfg.split)
    picture = preview(root, pd.read_csv(root / "chars_gt.csv", keep_default_na=False), corpus.lines)
    path = root / "preview.png"
    write_png(path, picture)
    return path
