from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from iamchars.cli import app
from iamchars.config import ParseConfig, SplitConfig
from iamchars.fileio import UnsafePathError
from iamchars.iam.corpus import image_path, load_corpus
from iamchars.iam.parse import parse_forms, parse_lines, parse_words
from iamchars.iam.rejects import IAMFormatError, Rejects
from iamchars.iam.splits import assign_form_splits, hash_split, writer_splits_from_task
from iamchars.iam.xml import parse_xml_forms

runner = CliRunner()


def test_words_rows_without_and_with_component_count() -> None:
    rows = [
        "a01-000u-00-00 ok 154 408 768 27 51 AT A",
        "a01-000u-00-01 ok 154 1 507 766 213 48 NN MOVE",
        "a01-000u-03-00 err 156 430 1290 120 60 NPT M Ps",
        "b01-000-00-00 ok 154 10 20 30 40 CD 1958",
    ]
    rejects = Rejects()
    words = parse_words(rows, "words.txt", rejects)
    assert rejects.frame().empty
    assert words["x"].tolist() == [408, 507, 430, 10]
    assert words["w"].tolist() == [27, 213, 120, 30]
    assert words["text"].tolist() == ["A", "MOVE", "M Ps", "1958"]
    assert words["tag"].tolist() == ["AT", "NN", "NPT", "CD"]
    assert words["line_id"].tolist()[0] == "a01-000u-00"
    assert words["form_id"].tolist()[0] == "a01-000u"


def test_malformed_rows_are_reported_with_file_and_line() -> None:
    rows = [
        "# header",
        "a01-000u-00-00 ok 154 408 768 27 51 AT A",
        "a01-000u-00-01 maybe 1 2 3 4 5 NN x",
        "a01-000u-00-02 ok 154 x 768 27 51 AT A",
        "short row",
    ]
    rejects = Rejects()
    words = parse_words(rows, "ascii/words.txt", rejects)
    assert len(words) == 1
    report = rejects.frame()
    assert report["line"].tolist() == [3, 4, 5]
    assert (report["file"] == "ascii/words.txt").all()
    with pytest.raises(IAMFormatError, match=r"ascii/words.txt:3: flag 'maybe'"):
        parse_words(rows, "ascii/words.txt", Rejects(strict=True))


def test_lines_keep_tokens_with_spaces() -> None:
    lines = parse_lines(["a01-000u-03 err 156 23 430 1290 1883 70 M Ps|tomorrow|.|Mr."], "l", Rejects())
    assert lines.loc[0, "transcription"] == "M Ps|tomorrow|.|Mr."
    assert lines.loc[0, "text"] == "M Ps tomorrow . Mr."
    assert (lines.loc[0, "x"], lines.loc[0, "h"], lines.loc[0, "components"]) == (430, 70, 23)


def test_forms_parse_and_reject() -> None:
    rejects = Rejects()
    forms = parse_forms(["a01-000x 001 2 all 6 6 52 52", "a01-000y 001 2 all six"], "forms.txt", rejects)
    assert forms["writer_id"].tolist() == ["001"]
    assert rejects.frame()["line"].tolist() == [2]


def test_real_sample_parses(real_sample: Path) -> None:
    corpus = load_corpus(real_sample)
    assert len(corpus.lines) == 13353
    assert (corpus.lines["flag"] == "err").sum() == 2009
    assert len(corpus.forms) == 1539
    writer = corpus.forms.set_index("form_id")["writer_id"]
    assert writer["a01-000x"] == "001"
    assert writer["a01-000u"] == "000"
    words = corpus.words.set_index("word_id")
    assert len(words) == 7
    assert tuple(words.loc["a01-000u-00-05", ["x", "y", "w", "h"]]) == (1438, 746, 382, 73)
    assert words["text"].tolist() == ["A", "MOVE", "to", "stop", "Mr.", "Gaitskell", "from"]
    assert words["valid"].all()  # the 7 word images exist, sized as their boxes
    assert corpus.lines["valid"].sum() == 3  # only 3 line images ship with the sample
    assert corpus.lines.loc[corpus.lines["line_id"] == "a01-000u-03", "text"].item().startswith("M Ps ")
    # trainset.txt puts writer 000 (a01-000u) in train; every writer sits in exactly one split
    assert corpus.forms.set_index("form_id").loc["a01-000u", "split"] == "train"
    assert corpus.forms.groupby("writer_id")["split"].nunique().max() == 1
    assert corpus.lines.groupby("writer_id")["split"].nunique().max() == 1


def test_info_on_real_sample(real_sample: Path) -> None:
    result = runner.invoke(app, ["info", "--iam-root", str(real_sample)])
    assert result.exit_code == 0, result.output
    assert "13,353" in result.output and "err 2,009" in result.output and "1,539" in result.output
    result = runner.invoke(app, ["info", "--iam-root", str(real_sample), "--json", "--no-check-images"])
    data = json.loads(result.output)
    assert data["lines"]["total"] == 13353 and data["forms"] == 1539 and data["writers"] == 657
    assert data["words"]["total"] == 7
    assert sum(s["lines"] for s in data["splits"].values()) == 13353


def test_validation_and_rejects_on_tiny_tree(tiny_iam: Path, tmp_path: Path) -> None:
    # make one image the wrong size and delete another
    import cv2
    import numpy as np

    cv2.imwrite(str(tiny_iam / "words/x01/x01-000/x01-000-00-01.png"), np.zeros((5, 5), np.uint8))
    (tiny_iam / "lines/x02/x02-000/x02-000-00.png").unlink()
    corpus = load_corpus(tiny_iam)
    rej = corpus.rejects.set_index("item_id")["reason"]
    assert rej["x01-000-00-02"] == "word box outside its line box"
    assert rej["x01-000-00-01"] == "image is 5x5, box says 60x40"
    assert rej["x02-000-00"] == "image missing"
    words = corpus.words.set_index("word_id")
    assert not words.loc["x01-000-00-02", "valid"] and words.loc["x01-000-00-00", "valid"]
    # a broken word image does not matter while its line image is fine; a missing line image does while the
    # word image is broken too
    assert words.loc["x01-000-00-01", "valid"] and not words.loc["x01-000-00-01", "image_ok"]
    assert not words.loc["x02-000-00-00", "line_image_ok"] and words.loc["x02-000-00-00", "image_ok"]
    assert len(corpus.words) == 8  # counts stay those of the files
    report = tmp_path / "rejects.csv"
    result = runner.invoke(app, ["info", "--iam-root", str(tiny_iam), "--rejects", str(report)])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(report)) == len(corpus.rejects)


def test_strict_mode_fails_with_file_and_line(tiny_iam: Path) -> None:
    with open(tiny_iam / "ascii" / "lines.txt", "a") as handle:
        handle.write("x01-000-02 ok 170 five 1 2 3 4 oops\n")
    with pytest.raises(IAMFormatError, match=r"ascii/lines.txt:6"):
        load_corpus(tiny_iam, ParseConfig(strict=True))
    result = runner.invoke(app, ["info", "--iam-root", str(tiny_iam), "--strict"])
    assert result.exit_code == 1 and "ascii/lines.txt:6" in result.output


def test_duplicate_ids_are_rejected(tiny_iam: Path) -> None:
    with open(tiny_iam / "ascii" / "words.txt", "a") as handle:
        handle.write("x02-000-00-00 ok 170 120 210 100 40 CD one\n")
    corpus = load_corpus(tiny_iam)
    assert (corpus.words["word_id"] == "x02-000-00-00").sum() == 1
    assert "duplicate word_id" in corpus.rejects["reason"].tolist()


def test_task_files_give_writer_disjoint_splits(tiny_iam: Path) -> None:
    (tiny_iam / "split").mkdir()
    (tiny_iam / "split" / "trainset.txt").write_text("x01-000-00\n")
    (tiny_iam / "split" / "testset.txt").write_text("x01-001-00\n")
    corpus = load_corpus(tiny_iam)
    split = corpus.forms.set_index("form_id")["split"]
    assert split["x01-000"] == "train" and split["x02-000"] == "train"  # same writer 100
    assert split["x01-001"] == "test"
    assert set(corpus.words["split"]) == {"train", "test"}


def test_task_conflicts_resolve_towards_test() -> None:
    splits, conflicts = writer_splits_from_task(
        {"train": ["a-1-00"], "test": ["a-2-00"], "val": ["b-1-00"]}, {"a-1": "w1", "a-2": "w1", "b-1": "w2"}
    )
    assert splits == {"w1": "test", "w2": "val"} and conflicts == 1


def test_hash_split_is_deterministic_and_never_leaves_a_split_empty() -> None:
    writers = [f"{i:03d}" for i in range(600)]
    a = hash_split(writers, [0.8, 0.1, 0.1], seed=0)
    assert a == hash_split(writers, [0.8, 0.1, 0.1], seed=0)
    counts = pd.Series(a).value_counts()
    assert (counts["train"], counts["val"], counts["test"]) == (480, 60, 60)
    assert set(hash_split(["a", "b", "c"], [0.8, 0.1, 0.1], seed=0).values()) == {"train", "val", "test"}
    assert hash_split(writers, [0.8, 0.1, 0.1], seed=1) != a


def test_unlisted_writers_can_be_excluded() -> None:
    forms = pd.DataFrame({"form_id": ["a-1", "b-1"], "writer_id": ["w1", "w2"]})
    split, stats = assign_form_splits(forms, {"train": ["a-1-00"]}, [1, 1, 1], 0, "exclude")
    assert split.to_dict() == {"a-1": "train", "b-1": "excluded"}
    assert stats["writers_unlisted"] == 1


def test_xml_forms_give_writer_lines_and_words() -> None:
    xml = """<?xml version="1.0"?>
<form id="a01-000x" writer-id="001" width="2479" height="3542">
 <handwritten-part>
  <line id="a01-000x-00" text="A &quot;MOVE&quot;" segmentation="ok" threshold="180">
   <word id="a01-000x-00-00" tag="AT" text="A"><cmp x="10" y="20" width="5" height="30"/></word>
   <word id="a01-000x-00-01" tag="NN" text="&quot;MOVE&quot;">
     <cmp x="30" y="15" width="20" height="30"/><cmp x="52" y="18" width="10" height="40"/></word>
  </line>
 </handwritten-part>
</form>"""
    rejects = Rejects()
    documents = [("xml/a01-000x.xml", xml.encode()), ("xml/bad.xml", b"<form")]
    forms, lines, words = parse_xml_forms(documents, rejects)
    assert forms["writer_id"].tolist() == ["001"]
    assert tuple(words.loc[1, ["x", "y", "w", "h"]]) == (30, 15, 32, 43)
    assert tuple(lines.loc[0, ["x", "y", "w", "h"]]) == (10, 15, 52, 43)
    assert words.loc[1, "text"] == '"MOVE"'
    assert rejects.frame()["file"].tolist() == ["xml/bad.xml"]


def test_split_ratios_are_configurable(tiny_iam: Path) -> None:
    corpus = load_corpus(tiny_iam, split=SplitConfig(ratios=[0.0, 0.0, 1.0]))
    assert set(corpus.forms["split"]) == {"test"}


def test_text_files_are_decoded_line_by_line_strictly() -> None:
    from iamchars.iam.parse import decode_lines
    from iamchars.iam.rejects import Rejects

    rejects = Rejects()
    data = b"\xef\xbb\xbf# header\r\nw-00 ok fine\nw-01 ok caf\xe9\nw-02 ok \xc3\xa9t\xc3\xa9\n"
    bad = data.index(b"caf\xe9") + 3
    lines = decode_lines(data, "ascii/words.txt", rejects)
    assert lines == ["# header\r", "w-00 ok fine", "", "w-02 ok été"]
    assert rejects.rows == [
        {
            "stage": "parse",
            "file": "ascii/words.txt",
            "line": 3,
            "item_id": "w-01",
            "reason": f"not UTF-8 (byte {bad} of the file)",
        }
    ]


def test_png_size_sees_truncation_without_decoding(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    from iamchars.fileio import png_size

    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.zeros((7, 11), np.uint8))
    assert png_size(path) == (11, 7)
    path.write_bytes(path.read_bytes()[:-1])
    assert png_size(path) == "image is truncated (no PNG end chunk)"
    path.write_bytes(b"GIF89a" + bytes(30))
    assert png_size(path) == "image is not a PNG"
    assert png_size(tmp_path / "none.png") == "image missing"


def test_ids_that_are_not_iam_ids_are_rejects_never_paths() -> None:
    rejects = Rejects()
    words = parse_words(
        [
            "a01-000u-00-00 ok 154 408 768 27 51 AT A",
            "../../x-000-00-00 ok 154 408 768 27 51 AT A",
            "/abs-000-00-00 ok 154 408 768 27 51 AT A",
            "nodash ok 154 408 768 27 51 AT A",
            "a01-000u-00 ok 154 408 768 27 51 AT A",
            "a01-000u-00-01 ok 154 4294967732 768 27 51 AT A",
        ],
        "ascii/words.txt",
        rejects,
    )
    lines = parse_lines(["a01-000u-0_ ok 154 19 408 746 1661 89 A|MOVE"], "ascii/lines.txt", rejects)
    forms = parse_forms(["a01/000u 000 2 prt 7 5 52 36"], "ascii/forms.txt", rejects)
    assert words["word_id"].tolist() == ["a01-000u-00-00"] and lines.empty and forms.empty
    table = rejects.frame()
    assert table["line"].tolist() == [2, 3, 4, 5, 6, 1, 1]
    assert table["reason"].str.contains("is not an IAM id").sum() == 6
    assert "out of range" in table["reason"].iloc[4]
    with pytest.raises(UnsafePathError):  # a bug that let one through could still not make it a path
        image_path(Path("/data"), "lines", "../../etc")


def test_xml_ids_and_numbers_are_checked_with_their_line() -> None:
    xml = b"""<?xml version="1.0" encoding="UTF-8"?>
<form id="a01-000x" writer-id="001">
 <line id="a01-000x-00" threshold="180">
  <word id="a01-000x-00-00" text="A"><cmp x="10" y="20" width="5" height="30"/></word>
  <word id="../../a01-000x-00-01" text="B"><cmp x="10" y="20" width="5" height="30"/></word>
  <word id="a01-000x-00-02" text="C"><cmp x="ten" y="20" width="5" height="30"/></word>
  <word id="b99-000x-00-03" text="D"><cmp x="10" y="20" width="5" height="30"/></word>
 </line>
 <line id="a01-000x-01/.." threshold="180"/>
</form>"""
    rejects = Rejects()
    _, _, words = parse_xml_forms([("xml/a01-000x.xml", xml)], rejects)
    assert words["word_id"].tolist() == ["a01-000x-00-00"]
    table = rejects.frame()
    assert table["line"].tolist() == [5, 6, 7, 9] and (table["file"] == "xml/a01-000x.xml").all()
    assert "must be integers" in table["reason"].iloc[1] and "not of line" in table["reason"].iloc[2]


def test_texts_are_put_in_nfc_and_every_word_row_is_checked_alike() -> None:
    from iamchars.iam.corpus import NARROW_BOX, word_problems
    from iamchars.iam.parse import decode_lines

    assert decode_lines("w-00 ok cafe\u0301\n".encode(), "ascii/words.txt", Rejects()) == ["w-00 ok caf\u00e9"]
    words = pd.DataFrame({"text": ["abc", "abcdef", "q\u0303", "ok"], "w": [6, 11, 40, 40]})
    problems = word_problems(words).tolist()
    assert problems[:2] == ["", NARROW_BOX]  # 2 px per character: 6 px hold "abc", 11 px not "abcdef"
    assert problems[2].startswith("transcription holds the combining mark U+0303") and problems[3] == ""
