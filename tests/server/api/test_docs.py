"""docs/api.md is checked against the OpenAPI schema: every route, its statuses, every error
code and every setting are documented, and nothing documented is missing from the service."""

import re
import typing
from pathlib import Path

import pytest

from fedrec.server.api.main import create_app
from fedrec.server.api.openapi import COMMON
from fedrec.server.api.schemas import ErrorCode
from fedrec.server.api.settings import Settings

DOC = (Path(__file__).parents[3] / "docs" / "api.md").read_text()
ROUTE_ROW = re.compile(r"^\| (GET|POST|PUT|DELETE) \| `([^`]+)` \| (\w+) \| ([0-9, ]+) \|", re.M)


@pytest.fixture(scope="module")
def schema() -> dict[str, typing.Any]:
    return create_app(Settings(model_path="/nonexistent")).openapi()


def test_every_route_is_documented_with_its_statuses(schema: dict[str, typing.Any]) -> None:
    documented = {
        (m, path): (op, {int(s) for s in statuses.split(",")})
        for m, path, op, statuses in ROUTE_ROW.findall(DOC)
    }
    served = {
        (method.upper(), path): (
            op["operationId"],
            {int(s) for s in op["responses"]} - set(COMMON),
        )
        for path, item in schema["paths"].items()
        for method, op in item.items()
    }
    assert documented == served


def test_every_error_code_is_documented() -> None:
    rows = dict(re.findall(r"^\| (\d{3}) \| `(\w+)` \|", DOC, re.M))
    codes = set(re.findall(r"^\| \d{3} \| `(\w+)` \|", DOC, re.M))
    assert codes == set(typing.get_args(ErrorCode)), rows


def test_every_setting_is_documented_with_its_default() -> None:
    rows = dict(re.findall(r"^\| `FEDREC_(\w+)` \| `?([^|`]*)`? \|", DOC, re.M))
    assert {k.lower() for k in rows} == set(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = rows[name.upper()]
        if isinstance(default, bool):
            assert shown == str(default).lower(), name
        elif isinstance(default, int | float) or (isinstance(default, str) and default):
            assert shown == str(default) or float(shown) == default, name
