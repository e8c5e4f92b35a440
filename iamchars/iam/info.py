"""A readable summary of a parsed IAM root (`iamchars info`)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from iamchars.iam.corpus import IAMCorpus


def summarize(corpus: IAMCorpus) -> dict[str, Any]:
    lines, words, forms = corpus.lines, corpus.words, corpus.forms
    text = words["text"] if len(words) else lines["transcription"].str.replace("|", "", regex=False)
    histogram = Counter("".join(text.tolist()).replace(" ", ""))
    splits: dict[str, dict[str, int]] = {}
    for name in sorted(set(forms["split"].dropna())):
        splits[name] = {
            "writers": int(forms.loc[forms["split"] == name, "writer_id"].nunique()),
            "forms": int((forms["split"] == name).sum()),
            "lines": int((lines["split"] == name).sum()),
            "words": int((words["split"] == name).sum()),
        }
    rejects = corpus.rejects
    return {
        "root": str(corpus.root),
        "forms": len(forms),
        "writers": int(forms["writer_id"].nunique()),
        "lines": {
            "total": len(lines),
            "ok": int((lines["flag"] == "ok").sum()),
            "err": int((lines["flag"] == "err").sum()),
            "with_valid_image": int(lines["valid"].sum()),
        },
        "words": {
            "total": len(words),
            "ok": int((words["flag"] == "ok").sum()),
            "err": int((words["flag"] == "err").sum()),
            "with_valid_image": int(words["valid"].sum()),
        },
        "characters": int(sum(histogram.values())),
        "char_histogram": dict(sorted(histogram.items(), key=lambda kv: (-kv[1], kv[0]))),
        "splits": splits,
        "split_source": corpus.split_stats,
        "warnings": list(corpus.warnings),
        "rejects": {
            "total": len(rejects),
            "by_reason": {str(k): int(v) for k, v in rejects["reason"].value_counts().items()},
        },
    }


def format_summary(summary: dict[str, Any], top_chars: int = 40) -> str:
    ln, wd = summary["lines"], summary["words"]
    out = [
        f"IAM root: {summary['root']}",
        f"forms:    {summary['forms']:>8,}   writers: {summary['writers']:,}",
        f"lines:    {ln['total']:>8,}   ok {ln['ok']:,} / err {ln['err']:,}   "
        f"with a valid image: {ln['with_valid_image']:,}",
        f"words:    {wd['total']:>8,}   ok {wd['ok']:,} / err {wd['err']:,}   "
        f"with a valid image: {wd['with_valid_image']:,}",
        f"characters: {summary['characters']:,} ({len(summary['char_histogram'])} distinct)",
        "",
        "split      writers    forms    lines    words",
    ]
    for name, s in summary["splits"].items():
        out.append(f"{name:<9}{s['writers']:>8,}{s['forms']:>9,}{s['lines']:>9,}{s['words']:>9,}")
    src = summary["split_source"]
    out.append(
        f"(writers from IAM task files: {src.get('writers_from_task_files', 0)}, "
        f"by writer hash: {src.get('writers_unlisted', 0)}, conflicts: {src.get('writer_conflicts', 0)})"
    )
    out += ["", f"most frequent characters (top {top_chars}):"]
    items = list(summary["char_histogram"].items())[:top_chars]
    width = max((c for _, c in items), default=1)
    for ch, count in items:
        bar = "#" * max(1, round(30 * count / width))
        out.append(f"  {ch!r:>5} {count:>9,} {bar}")
    rej = summary["rejects"]
    out += ["", f"rejects: {rej['total']:,}"]
    for reason, count in list(rej["by_reason"].items())[:10]:
        out.append(f"  {count:>8,}  {reason}")
    return "\n".join(out)
