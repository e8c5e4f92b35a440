"""The dataset card (card.md): what is in the dataset, how it was made, and how to load it."""

from __future__ import annotations

import json
from typing import Any

from iamchars import __version__
from iamchars.dataset.classes import ClassSet


def render_card(summary: dict[str, Any], classes: ClassSet) -> str:
    cfg = summary["config"]
    exp = cfg["export"]
    lines = [
        "# iamchars character dataset",
        "",
        f"Built by iamchars {__version__} from `{summary['root']}` with boxes from **{summary['source']}**.",
        "",
        "## Contents",
        "",
        f"- {summary['characters']:,} character images, {exp['size']} x {exp['size']} uint8, "
        "**white ink (255) on a black background (0)**, "
        + (
            "aspect ratio kept, the box filling the tile with a 2-pixel margin (EMNIST conventions)."
            if exp["crop"] == "char"
            else f"each a window of its line's scale (the line's ink mean +- {exp['line_window_stds']} standard "
            "deviations, centred on the character): size and height relative to the line are kept, the ink "
            "outside the character's box is blanked."
        ),
        f"- Class set `{classes.name}` ({len(classes.classes)} classes); IAM `err` words "
        f"{'included' if exp['include_err'] else 'excluded'}; minimum confidence {exp['min_confidence']}.",
        "- Splits are writer-disjoint (IAM's Large Writer Independent task files where present, else a "
        "deterministic split by writer id).",
        *_source_form(summary.get("input", {})),
        _input_form(summary.get("word_boxes", {})),
        "",
        "| split | characters | writers |",
        "| --- | ---: | ---: |",
    ]
    for split, count in summary["splits"].items():
        lines.append(f"| {split} | {count:,} | {summary['writers'][split]:,} |")
    lines += [
        "",
        "## Files",
        "",
        "- `manifest.parquet` / `manifest.csv`: one row per character with its provenance (`char_id, word_id, "
        "line_id, form_id, writer_id, split`), its class (`char, label`), its box in form-page pixels "
        "(`x, y, w, h`), its `confidence` (the calibrated probability that the box is right), the self-check "
        "IoU `check_iou` (empty unless its word is separable), its line's ink mean row and standard deviation "
        "(`line_mean_y, line_std`, the statistics the vertical bounds come from), its word's box (`word_x, "
        "word_y, word_w, word_h`) and whether the input gave it or it was found in the line's ink (`word_box`: "
        "given / found), and the PNG path `image`.",
        "- `images/{train,val,test}/<label>_<name>/<char_id>.png`: ImageFolder layout; every split holds every "
        "class's folder (empty where it lacks the class), the names sort in label order and never differ only by "
        "case, so ImageFolder (`allow_empty=True`) gives each image its label; `iamchars.data.class_to_idx` "
        "returns the same map.",
        "- `dataset.json`: the completion record (each file's size and SHA-256), written last; readers refuse a "
        "dataset without it or at odds with it.",
        "- `arrays/{train,val,test}.npz`: `images` (N x S x S uint8), `labels` (int64), `char_ids`, and "
        "`geometry` (N x 3 float32: each box's top, bottom and width in its line's ink standard deviations, "
        "from the line's ink mean row; what a crop scaled to fill its tile loses, for `iamchars train --geometry`).",
        "- `classes.json`: label -> character(s) and folder; `rejects.csv`: everything skipped, with reasons.",
        "- `qa/`: `overlays.png` (boxes over lines, red = low confidence, green = high), `overview.png` (a "
        "row per class), `classes/<folder>.png` (a sheet per class), `lowest_confidence.png` (where to start "
        "reviewing), `reliability.png` (the confidence against how often boxes are right).",
        "",
        "Loading the packed arrays: `d = numpy.load('arrays/train.npz'); x, y = d['images'], d['labels']`.",
        "",
        "## Counts per class",
        "",
        "| label | char | train | val | test |",
        "| ---: | :---: | ---: | ---: | ---: |",
    ]
    for label, members in enumerate(classes.classes):
        c = summary["per_class"].get(label, {})
        name = "/".join(members).replace("|", "\\|")
        lines.append(f"| {label} | `{name}` | {c.get('train', 0):,} | {c.get('val', 0):,} | {c.get('test', 0):,} |")
    check = summary["self_check"]
    lines += [
        "",
        "## Self-check of the boxes (no ground truth needed)",
        "",
        "Words whose characters are each one piece of ink (dots and accents stacked on) have exact boxes even on "
        "real scans; the dataset's boxes are compared with them (column `check_iou` of the manifest).",
        "",
        f"- {check['words_checked']:,} of {check['words_total']:,} words qualified "
        f"({check['characters_checked']:,} characters).",
    ]
    if check["characters_checked"]:
        lines.append(
            f"- Mean IoU {check['mean_iou']:.3f}; IoU >= 0.5 for {100 * check['share_iou_ge_0.5']:.1f}% of them. "
            "Separable words are easier than joined ones: read this as an upper bound of the whole dataset's IoU."
        )
    if summary.get("words_from_pieces"):
        lines.append(
            f"- Not counted above: {summary['words_from_pieces']:,} words whose letters are written apart (one-letter "
            "words among them). Their pieces of ink are their boxes (exact; `source` = pieces in the manifest)."
        )
    lines += _trust(summary.get("reliability"))
    excluded = summary["excluded_by_class_set"]
    lines += [
        "",
        "## Not exported",
        "",
        f"- Outside the class set: {sum(excluded.values()):,} characters "
        f"({', '.join(f'`{k}` {v:,}' for k, v in list(excluded.items())[:20]) or 'none'}).",
        f"- Below the minimum confidence: {summary['below_min_confidence']:,}.",
        f"- Word boxes too narrow for their transcription (rejected, their characters not exported): "
        f"{summary.get('narrow_word_boxes', 0):,}.",
        f"- Rejected (see `rejects.csv`): {summary['rejects']:,}"
        + ("".join(f"\n  - {v:,} x {k}" for k, v in list(summary["rejects_by_reason"].items())[:10])),
        "",
        "## Time taken",
        "",
    ]
    lines += _timings(summary["timings"], summary.get("alignment"), cfg["segment"]["align"])
    lines += ["", "## Parameters", "", "```json", json.dumps(cfg, indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)


def _trust(report: dict[str, Any] | None) -> list[str]:
    """The card's section on the confidence: how well it predicted which boxes are right, and what each
    threshold keeps."""
    if report is None:
        return []
    lines = [
        "",
        "## How far to trust each box",
        "",
        "Each character's `confidence` is the estimated probability that its box is right (IoU >= 0.5 with the "
        "box of its own ink), from what the segmentation knows of it: the aligner's certainty of its cuts, how "
        "well its ink fits its letter and its word's, its ink score and the self-check. Filter with "
        "`build-dataset --min-confidence T`, or on the manifest's column.",
        "",
    ]
    if report["characters"]:
        easier = (
            " These words are the easier ones: the share right is higher than the whole dataset's."
            if report["against"] != "true boxes"
            else ""
        )
        lines += [
            "![reliability](qa/reliability.png)",
            "",
            f"Measured against {report['against']} ({report['characters']:,} characters, "
            f"{100 * report['share_right']:.1f}% right): AUROC {report['auroc']:.3f} (the chance that a right box "
            f"is more confident than a wrong one), expected calibration error {report['ece']:.3f}, "
            f"{100 * report['right_among_80pc_most_confident']:.1f}% right among the 80% most confident.{easier}",
            "",
        ]
    observed = any("observed_right" in r for r in report["thresholds"])
    lines += [
        "| confidence >= | characters kept | expected share right |" + (" observed share right |" if observed else ""),
        "| ---: | ---: | ---: |" + (" ---: |" if observed else ""),
    ]
    for r in report["thresholds"]:
        row = f"| {r['threshold']:.2f} | {100 * r['kept']:.1f}% | {_percent(r['expected_right'])} |"
        lines.append(row + (f" {_percent(r['observed_right'])} |" if observed else ""))
    return lines


def _percent(share: float) -> str:
    return "-" if share != share else f"{100 * share:.1f}%"  # NaN: no character kept


STAGES = {
    "parse_s": "reading the corpus",
    "align_s": "learned alignment (`aligned`)",
    "segment_crop_s": "segmenting and cropping",
    "merge_s": "arrays, manifest and images",
    "qa_s": "QA pictures",
}


def _timings(timings: dict[str, float], alignment: dict[str, Any] | None, plan: dict[str, Any]) -> list[str]:
    """The time of each stage, the learned alignment's parts and the networks it fitted."""
    rows = ["| stage | seconds |", "| --- | ---: |"]
    for key, name in STAGES.items():
        if key in timings and (key != "align_s" or alignment):
            rows.append(f"| {name} | {timings[key]:,.1f} |")
        if key == "align_s" and alignment:
            rows += [
                f"| - word strips ({alignment['words']:,} words) | {alignment['strips_s']:,.1f} |",
                f"| - fitting {alignment['networks']} networks ({alignment['runs']} run(s) x {plan['rounds']} rounds "
                f"x {plan['folds']} folds; {alignment['steps']:,} steps on {alignment['device']}) "
                f"| {alignment['fit_s']:,.1f} |",
                f"| - re-aligning ({alignment['realigned']:,} word alignments) | {alignment['realign_s']:,.1f} |",
            ]
    rows.append(f"| **total** | **{timings['total_s']:,.1f}** |")
    resumed = int(timings.get("forms_resumed", 0))
    rows += ["", f"Forms resumed from a stopped run (their time is not counted above): {resumed:,}."]
    return rows


def _input_form(word_boxes: dict[str, int]) -> str:
    """The card's line on the input form: were the words boxed by the input, or found in the lines' ink?"""
    given, found = word_boxes.get("given", 0), word_boxes.get("found", 0)
    if not found:
        return f"- Input: lines with word boxes; all {given:,} words' boxes are the input's own."
    how = (
        "the input boxes its lines only"
        if not given
        else f"{given:,} words were boxed by the input, the rest of the lines were boxed only as lines"
    )
    return (
        f"- Input: {how}; {found:,} words' boxes were **found** in their lines' ink (`word_box` = found in the "
        "manifest; `qa/overlays.png` draws them in blue), and their ids are the line's id and the word's index in "
        "the transcription."
    )


def _source_form(source: dict[str, Any]) -> list[str]:
    """The card's line on a PAGE or ALTO input: its pages and lines, and where the writers came from."""
    if source.get("format", "iam") == "iam":
        return []
    fmt = str(source["format"]).upper().replace("PAGE", "PAGE XML")
    return [
        f"- Source: {source['pages']:,} {fmt} pages from `{source['folder']}` ({source['lines']:,} text lines, "
        f"{source['lines_with_word_boxes']:,} of them with word boxes); writers: {source['writers']}."
        + (
            f" {source['pages_not_read']:,} XML files could not be read (see rejects.csv)."
            if source.get("pages_not_read")
            else ""
        )
    ]
