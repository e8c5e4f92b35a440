"""PAGE and ALTO parsing (`layout.read`) and the import's edge cases (`layout.convert`): malformed XML named by
file and line, lines without text or outline left out with their line, images only from inside the folder,
polygons honoured."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from iamchars.layout.convert import (
    ONE_WRITER_PER_PAGE,
    LayoutCorpusError,
    crop_line,
    find_image,
    form_ids,
    import_corpus,
)
from iamchars.layout.formats import read_layout
from iamchars.layout.read import LayoutError, points

PAGE = b"""<?xml version="1.0" encoding="UTF-8"?>
<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15">
  <Page imageFilename="scan.png" imageWidth="200" imageHeight="100">
    <TextRegion id="r1">
      <Coords points="0,0 199,0 199,99 0,99"/>
      <TextLine id="l1">
        <Coords points="10,10 150,10 150,40 10,40"/>
        <Baseline points="10,35 150,35"/>
        <TextEquiv><Unicode>Hello  world</Unicode></TextEquiv>
      </TextLine>
      <TextLine id="l2">
        <Coords points="10,50 150,50 150,80 10,80"/>
        <Word id="w1"><Coords points="10,50 60,50 60,80 10,80"/><TextEquiv><Unicode>Two</Unicode></TextEquiv></Word>
        <Word id="w2"><Coords points="70,50 150,50 150,80 70,80"/><TextEquiv><Unicode>words</Unicode></TextEquiv></Word>
        <TextEquiv><Unicode>Two words</Unicode></TextEquiv>
      </TextLine>
      <TextLine id="l3"><Coords points="10,85 20,85 20,95 10,95"/></TextLine>
      <TextLine id="l4"><TextEquiv><Unicode>no outline</Unicode></TextEquiv></TextLine>
    </TextRegion>
  </Page>
</PcGts>
"""

ALTO = b"""<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#">
  <Description><MeasurementUnit>pixel</MeasurementUnit>
    <sourceImageInformation><fileName>scan.png</fileName></sourceImageInformation></Description>
  <Layout><Page ID="p" WIDTH="200" HEIGHT="100"><PrintSpace>
    <TextBlock ID="b" HPOS="0" VPOS="0" WIDTH="200" HEIGHT="100">
      <TextLine ID="l1" HPOS="10" VPOS="10" WIDTH="140" HEIGHT="30">
        <Shape><Polygon POINTS="10 10 150 10 150 40 10 40"/></Shape>
        <String CONTENT="Hello world"/>
      </TextLine>
      <TextLine ID="l2" HPOS="10" VPOS="50" WIDTH="140" HEIGHT="30">
        <String CONTENT="Two" HPOS="10" VPOS="50" WIDTH="50" HEIGHT="30"/><SP/>
        <String CONTENT="words" HPOS="70" VPOS="50" WIDTH="80" HEIGHT="30"/>
      </TextLine>
    </TextBlock></PrintSpace></Page></Layout>
</alto>
"""


@pytest.mark.parametrize("data", [PAGE, ALTO])
def test_lines_words_and_word_boxes_are_read(data: bytes) -> None:
    page = read_layout(data, "x.xml")
    assert page.image == "scan.png" and page.size == (200, 100)
    first, second = page.lines[:2]
    assert first.words == ["Hello", "world"] and first.word_boxes is None  # a line transcription: words found later
    assert second.words == ["Two", "words"]
    assert second.word_boxes is not None and second.word_boxes[1][0] == 70
    assert first.polygon.tolist() == [[10, 10], [150, 10], [150, 40], [10, 40]]
    assert first.region is not None and first.region.max() == 199


def test_lines_without_text_or_outline_are_left_out_with_their_xml_line() -> None:
    page = read_layout(PAGE, "x.xml")
    assert [line.order for line in page.lines] == [0, 1]
    assert page.problems == [
        (17, "text line without a transcription", 0),
        (18, "text line without readable Coords points", 2),  # its two words count as lost
    ]


def test_malformed_xml_names_file_and_line() -> None:
    broken = PAGE.replace(b"</TextRegion>", b"</TextRegionX>")
    with pytest.raises(LayoutError, match=r"^x\.xml:19: malformed XML: Opening and ending tag mismatch"):
        read_layout(broken, "x.xml")
    with pytest.raises(LayoutError, match=r"x\.xml:1: root element <html>"):
        read_layout(b"<html/>", "x.xml")
    with pytest.raises(LayoutError, match="MeasurementUnit 'mm10'"):
        read_layout(ALTO.replace(b">pixel<", b">mm10<"), "x.xml")


def test_entities_are_not_expanded() -> None:
    hostile = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + PAGE.split(b"?>", 1)[1]
    page = read_layout(hostile.replace(b"Hello  world", b"&e;"), "x.xml")
    assert "root:" not in " ".join(w for line in page.lines for w in line.words)


def test_points_accept_both_notations_and_refuse_too_few() -> None:
    assert points("1,2 3,4 5,6").tolist() == [[1, 2], [3, 4], [5, 6]]
    assert points("1.4 2 3 4 5 6").tolist() == [[1, 2], [3, 4], [5, 6]]
    assert points("1,2 3,4") is None and points(None) is None


def test_crop_masks_outside_the_polygon_with_paper() -> None:
    page = np.full((50, 60), 230, np.uint8)
    page[:, 30:] = 0  # ink everywhere right of column 30
    triangle = np.array([[0, 0], [59, 0], [0, 49]])
    crop, origin = crop_line(page, triangle, None)
    assert origin == (0, 0) and crop.shape == (50, 60)
    assert crop[49, 59] == 230 and crop[0, 40] == 0  # outside the triangle: paper; inside: the page


def test_image_names_never_leave_the_folder(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "secret.png"), np.zeros((4, 4), np.uint8))
    cv2.imwrite(str(tmp_path / "in" / "a.png"), np.zeros((4, 4), np.uint8))
    assert find_image(tmp_path / "in", "a.xml", "../secret.png") == tmp_path / "in" / "a.png"  # the stem's image
    assert find_image(tmp_path / "in", "b.xml", "/etc/passwd") is None
    (tmp_path / "in" / "link.png").symlink_to(tmp_path / "secret.png")
    assert find_image(tmp_path / "in", "c.xml", "link.png") is None


def test_form_ids_are_iam_ids_and_unique() -> None:
    assert form_ids(["a/0001_page.xml", "a0001page.xml", "ü.xml"]) == {
        "a/0001_page.xml": "pg-a0001page",
        "a0001page.xml": "pg-a0001pagen2",
        "ü.xml": "pg-page",
    }


def test_import_rejects_bad_pages_and_goes_on(tmp_path: Path) -> None:
    src = tmp_path / "pages"
    src.mkdir()
    page = np.full((100, 200), 255, np.uint8)
    page[15:35, 20:140:12] = 0
    page[55:75, 20:140:12] = 0
    cv2.imwrite(str(src / "scan.png"), page)
    (src / "good.xml").write_bytes(PAGE)
    (src / "broken.xml").write_bytes(PAGE[:300])
    (src / "noimage.xml").write_bytes(PAGE.replace(b"scan.png", b"gone.png"))
    corpus = import_corpus(src, tmp_path / "out" / ".import", progress=False)
    assert corpus.pages["xml"].tolist() == ["good.xml"]
    reasons = dict(zip(corpus.rejects["file"], corpus.rejects["reason"], strict=False))
    assert reasons["broken.xml"].startswith("malformed XML") and "not found" in reasons["noimage.xml"]
    lines = (corpus.root / "ascii" / "lines.txt").read_text().splitlines()
    assert lines[1].startswith("pg-good-00 ok 0 2 10 10 141 31 Hello|world")
    assert (corpus.root / "lines" / "pg" / "pg-good" / "pg-good-01.png").is_file()
    assert corpus.lines["words_given"].tolist() == [False, True]
    assert corpus.describe()["writers"] == ONE_WRITER_PER_PAGE  # no writers.csv: each page its own writer
    assert (corpus.root / "ascii" / "forms.txt").read_text().splitlines()[1].split()[:2] == ["pg-good", "good"]
    (src / "writers.csv").write_text("page,writer\ngood.xml,../x\n")
    with pytest.raises(LayoutCorpusError, match=r"writers.csv:2: writer '../x'"):
        import_corpus(src, tmp_path / "out" / ".import", progress=False)


def test_numbers_that_are_not_coordinates_make_problems_not_crashes() -> None:
    assert points("2.8e2,5 3,4 5,6").tolist() == [[280, 5], [3, 4], [5, 6]]  # scientific notation is one number
    assert points("NaN,1 2,3 4,5") is None and points("1e999,1 2,3 4,5") is None
    assert points("12345678901234567890,1 2,3 4,5") is None  # past MAX_COORDINATE, never an int64 overflow
    alto = read_layout(ALTO.replace(b'HPOS="10" VPOS="50"', b'HPOS="NaN" VPOS="50"', 1), "x.xml")
    assert alto.problems == [(11, "text line without a readable box or polygon", 2)]
    alto = read_layout(ALTO.replace(b'WIDTH="50"', b'WIDTH="INF"'), "x.xml")
    assert alto.lines[1].word_boxes is None  # one String without a box: the line's words are found
    page = read_layout(PAGE.replace(b'imageWidth="200"', b'imageWidth="1e999"'), "x.xml")
    assert page.size is None and len(page.lines) == 2


def test_transcriptions_are_read_whole_from_the_main_text_equiv_in_nfc() -> None:
    commented = PAGE.replace(b"Hello  world", b"neigh<!-- a note -->borhood caf\x65\xcc\x81")
    assert read_layout(commented, "x.xml").lines[0].words == ["neighborhood", "caf\u00e9"]
    entity = b'<?xml version="1.0"?><!DOCTYPE PcGts [<!ENTITY n "neigh">]>' + PAGE.split(b"?>", 1)[1]
    assert read_layout(entity.replace(b"Hello  world", b"&n;borhood"), "x.xml").lines[0].words == ["neighborhood"]
    two = PAGE.replace(
        b"<TextEquiv><Unicode>Hello  world</Unicode></TextEquiv>",
        b'<TextEquiv index="2"><Unicode>second</Unicode></TextEquiv>'
        b'<TextEquiv index="1"><Unicode>first</Unicode></TextEquiv>',
    )
    assert read_layout(two, "x.xml").lines[0].words == ["first"]


def test_an_entity_that_is_not_plain_text_makes_the_line_a_problem() -> None:
    hostile = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + PAGE.split(b"?>", 1)[1]
    page = read_layout(hostile.replace(b"Hello  world", b"x&e;"), "x.xml")
    assert page.problems[0][1].startswith("text holds the entity &e;")
    assert [line.words for line in page.lines] == [["Two", "words"]]
