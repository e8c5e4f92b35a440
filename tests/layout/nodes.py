"""A node-by-node comparison of a PAGE or ALTO file with the one iamchars wrote back: every node of the input
(elements with their attributes, text and tails, comments, processing instructions, entity references, the
prolog and the DOCTYPE) is in the output, unchanged and in order; what the output adds is returned."""

from __future__ import annotations

from lxml import etree


def _local(node: etree._Element) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else str(node.tag)


def _same(a: etree._Element, b: etree._Element, added: list[etree._Element], where: str) -> None:
    assert a.tag == b.tag, f"{where}: <{a.tag}> became <{b.tag}>"
    assert dict(a.attrib) == dict(b.attrib), f"{where}: attributes {dict(a.attrib)} became {dict(b.attrib)}"
    assert a.text == b.text and a.tail == b.tail, f"{where}: text {a.text!r}/{a.tail!r} became {b.text!r}/{b.tail!r}"
    theirs = list(b)
    k = 0
    for child in a:
        while k < len(theirs) and not _matches(child, theirs[k]):
            added.append(theirs[k])
            k += 1
        assert k < len(theirs), f"{where}: child <{_local(child)}> (line {child.sourceline}) is gone"
        _same(child, theirs[k], added, f"{where}/{_local(child)}")
        k += 1
    added.extend(theirs[k:])


def _matches(a: etree._Element, b: etree._Element) -> bool:
    return a.tag == b.tag and dict(a.attrib) == dict(b.attrib)


def added_nodes(original: bytes, written: bytes) -> list[etree._Element]:
    """The elements `written` adds to `original`; an AssertionError naming the first node that `written`
    lost or changed."""
    parser = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True)
    a = etree.fromstring(original, parser).getroottree()
    b = etree.fromstring(written, parser).getroottree()
    assert a.docinfo.doctype == b.docinfo.doctype, f"DOCTYPE {a.docinfo.doctype!r} became {b.docinfo.doctype!r}"
    assert (a.docinfo.encoding, a.docinfo.standalone) == (b.docinfo.encoding, b.docinfo.standalone)
    before = [(n.tag, n.text) for n in a.getroot().itersiblings(preceding=True)]
    after = [(n.tag, n.text) for n in a.getroot().itersiblings()]
    assert before == [(n.tag, n.text) for n in b.getroot().itersiblings(preceding=True)], "prolog changed"
    assert after == [(n.tag, n.text) for n in b.getroot().itersiblings()], "nodes after the root changed"
    added: list[etree._Element] = []
    _same(a.getroot(), b.getroot(), added, _local(a.getroot()))
    return added
