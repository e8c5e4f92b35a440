"""Writing glyphs back (`layout.write`): the user's file comes back whole, node for node, with nothing but
Glyphs added to the words it holds (and Words where a line had none); what it already had is kept."""

from __future__ import annotations

from lxml import etree

from iamchars.layout.formats import read_layout, write_glyphs
from iamchars.layout.write import GlyphBox, WordGlyphs
from tests.layout.nodes import added_nodes

PAGE_NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
PAGE = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<?xml-stylesheet type="text/xsl" href="view.xsl"?>
<!-- made by hand -->
<!DOCTYPE PcGts [ <!ENTITY nb "neighbor"> ]>
<PcGts xmlns="{PAGE_NS}">
  <Page imageFilename="scan.png" imageWidth="300" imageHeight="100">
    <TextRegion id="r1">
      <Coords points="0,0 299,0 299,99 0,99"/>
      <TextLine id="l1" custom="readingOrder {{index:0;}}">
        <Coords points="10,10 250,10 250,40 10,40"/>
        <Word id="w1" custom="x"><TextEquiv><Unicode>&nb;hood</Unicode></TextEquiv><TextStyle bold="true"/></Word>
        <Word id="w2"><Coords points="150,10 250,10 250,40 150,40"/><TextEquiv><Unicode>now</Unicode></TextEquiv></Word>
        <TextEquiv><Unicode>&nb;hood now</Unicode></TextEquiv>
      </TextLine>
      <TextLine id="l2">
        <Coords points="10,50 250,50 250,80 10,80"/>
        <Word id="w3"><Coords points="10,50 90,50 90,80 10,80"/>
          <Glyph id="mine"><Coords points="10,50 20,50 20,80 10,80"/>
            <TextEquiv><Unicode>T</Unicode></TextEquiv></Glyph>
          <TextEquiv><Unicode>Two</Unicode></TextEquiv></Word>
        <Word id="w4"><Coords points="100,50 250,50 250,80 100,80"/>
          <TextEquiv><Unicode>words</Unicode></TextEquiv></Word>
      </TextLine>
    </TextRegion>
  </Page>
</PcGts>
<!-- the end -->
""".encode()

ALTO = b"""<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#">
  <Description><MeasurementUnit>pixel</MeasurementUnit>
    <sourceImageInformation><fileName>scan.png</fileName></sourceImageInformation></Description>
  <Styles><TextStyle ID="s1" FONTSIZE="10"/></Styles>
  <Layout><Page ID="p" WIDTH="300" HEIGHT="100"><PrintSpace>
    <TextBlock ID="b" HPOS="0" VPOS="0" WIDTH="300" HEIGHT="100">
      <TextLine ID="l1" HPOS="10" VPOS="10" WIDTH="280" HEIGHT="30">
        <String ID="a" CONTENT="Hello" WC="0.9" STYLEREFS="s1"/><String ID="b2" CONTENT=","/><SP WIDTH="12"/>
        <String ID="c" CONTENT="wor" SUBS_TYPE="HypPart1" SUBS_CONTENT="world"/><HYP CONTENT="-"/>
      </TextLine>
    </TextBlock></PrintSpace></Page></Layout>
</alto>
"""


def word(index: int, text: str, x: int) -> WordGlyphs:
    glyphs = [GlyphBox(c, (x + 10 * k, 10, 10, 30), 0.5) for k, c in enumerate(text)]
    return WordGlyphs(index, text, (x, 10, 10 * len(text), 30), False, glyphs)


def test_page_comes_back_whole_with_glyphs_in_the_users_words() -> None:
    page = read_layout(PAGE, "p.xml")
    assert [line.words for line in page.lines] == [["neighborhood", "now"], ["Two", "words"]]
    assert page.lines[0].word_boxes is None  # w1 has no Coords: the line's words are found in its ink
    lines = {0: [word(0, "neighborhood", 10), word(1, "now", 150)], 1: [word(0, "Two", 10), word(1, "words", 100)]}
    written, report = write_glyphs(PAGE, "p.xml", lines)
    added = added_nodes(PAGE, written)
    assert [etree.QName(e).localname for e in added] == ["Glyph"] * (12 + 3 + 5)  # w3's own Glyph is kept alone
    assert report.words_with_own_glyphs == 1 and report.lines_not_matched == []
    assert written.startswith(b"<?xml version='1.0' encoding='UTF-8' standalone='yes'?>")
    assert b"&nb;hood" in written and b"<!-- the end -->" in written and b"view.xsl" in written
    tree = etree.fromstring(written)
    w1 = tree.find(f".//{{{PAGE_NS}}}Word[@id='w1']")
    assert [
        g.findtext(f"{{{PAGE_NS}}}TextEquiv/{{{PAGE_NS}}}Unicode") for g in w1.findall(f"{{{PAGE_NS}}}Glyph")
    ] == list("neighborhood")
    assert read_layout(written, "p.xml").lines[1].words == ["Two", "words"]  # still reads, entities and all


def test_alto_strings_without_boxes_keep_every_attribute_and_get_glyphs() -> None:
    page = read_layout(ALTO, "a.xml")
    assert page.lines[0].words == ["Hello", ",", "wor"] and page.lines[0].word_boxes is None
    written, report = write_glyphs(ALTO, "a.xml", {0: [word(0, "Hello", 10), word(1, ",", 60), word(2, "wor", 80)]})
    added = added_nodes(ALTO, written)
    assert [e.getparent().get("ID") for e in added] == ["a"] * 5 + ["b2"] + ["c"] * 3
    assert [e.get("ID") for e in added][:2] == ["a_g00", "a_g01"]
    assert report.words_with_own_glyphs == 0


def test_a_line_whose_words_do_not_spell_its_text_is_left_alone_and_reported() -> None:
    mismatched = PAGE.replace(b"<Unicode>now</Unicode>", b"<Unicode>then</Unicode>")
    written, report = write_glyphs(mismatched, "p.xml", {0: [word(0, "neighborhood", 10), word(1, "now", 150)]})
    assert added_nodes(mismatched, written) == [] and report.lines_not_matched == [9]


def test_new_words_for_a_line_that_has_none_and_ids_never_repeat_the_users() -> None:
    bare = PAGE.replace(b'<TextLine id="l2">', b'<TextLine id="l2x">').replace(b'id="w3"', b'id="l1_iamchars_w00"')
    bare = etree.tostring(etree.fromstring(bare.split(b"-->", 1)[1].split(b"]>", 1)[1].replace(b"&nb;", b"x")))
    root = etree.fromstring(bare)
    line = root.find(f".//{{{PAGE_NS}}}TextLine[@id='l1']")
    for w in line.findall(f"{{{PAGE_NS}}}Word"):
        line.remove(w)
    bare = etree.tostring(root)
    written, _ = write_glyphs(bare, "p.xml", {0: [word(0, "xhood", 10), word(1, "now", 150)]})
    added = added_nodes(bare, written)
    assert [e.get("id") for e in added] == ["l1_iamchars_w00_2", "l1_iamchars_w01"]
    assert [etree.QName(c).localname for c in added[0]] == [
        "Coords",
        "Glyph",
        "Glyph",
        "Glyph",
        "Glyph",
        "Glyph",
        "TextEquiv",
    ]
