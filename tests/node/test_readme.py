"""The README's API table lists exactly the routes of `/openapi.json`."""

from __future__ import annotations

import re
from pathlib import Path

from node.api.limits import RpcLimits
from node.api.openapi import build_openapi

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_routes() -> set[tuple[str, str]]:
    text = README.read_text()
    section = text[text.index("### HTTP API") : text.index("## Architecture")]
    rows = re.findall(r"^\| (GET|POST) \| `([^`]+)` \|", section, flags=re.MULTILINE)
    return {(method.lower(), path) for method, path in rows}


def test_the_readme_documents_every_route_and_no_other() -> None:
    document = build_openapi(RpcLimits())
    routes = {(method, path) for path, item in document["paths"].items() for method in item}
    assert readme_routes() == routes


def test_the_configuration_reference_is_current() -> None:
    from node.config.reference import reference

    path = README.parent / "docs" / "configuration.md"
    hint = "run: python -m node.config.reference > docs/configuration.md"
    assert path.read_text() == reference(), hint
