"""report.json validates against docs/report.schema.json (schema version 2): healthy and failing
runs, ignored checks, errors and a baseline section. A small hand-written validator of the JSON
Schema subset the file uses (no new dependency)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from diffcheck import Status
from diffcheck.engine.config import Options
from diffcheck.api import run
from diffcheck.engine.results import RESULT_SCHEMA_VERSION
from tests.conftest import HEALTHY_CKPT, ROOT, TINY_DATA, report_for

SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())
_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
          "integer": int, "number": (int, float)}


def _is(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


def errors(value: Any, schema: dict, path: str = "$") -> list[str]:
    """Where ``value`` breaks ``schema`` (type, const, enum, required, properties,
    additionalProperties, items, pattern, minimum, local $ref)."""
    import re

    if "$ref" in schema:
        node = SCHEMA
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        return errors(value, {**node, **{k: v for k, v in schema.items() if k != "$ref"}}, path)
    kinds = schema.get("type")
    if kinds is not None and not any(_is(value, k) for k in ([kinds] if isinstance(kinds, str) else kinds)):
        return [f"{path}: {type(value).__name__} is not {kinds}"]
    out = []
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: {value!r} != {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} not in {schema['enum']}")
    if "minimum" in schema and _is(value, "number") and value < schema["minimum"]:
        out.append(f"{path}: {value} < {schema['minimum']}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        out.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        out += [f"{path}: missing {k!r}" for k in schema.get("required", []) if k not in value]
        props, extra = schema.get("properties", {}), schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                out += errors(v, props[k], f"{path}.{k}")
            elif extra is False:
                out.append(f"{path}: undocumented field {k!r}")
            elif isinstance(extra, dict):
                out += errors(v, extra, f"{path}.{k}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += errors(item, schema["items"], f"{path}[{i}]")
    return out


def test_the_validator_rejects_what_the_schema_forbids():
    good = report_for("healthy", ("FWD001",)).to_dict()
    assert errors(good, SCHEMA) == []
    bad = {**good, "extra": 1, "exit_code": 7, "results": [{**good["results"][0], "status": "MAYBE"}]}
    del bad["counts"]
    assert set(errors(bad, SCHEMA)) == {"$.exit_code: 7 not in [0, 1, 2, 3, 130]", "$: missing 'counts'",
                                        "$.results[0].status: 'MAYBE' not in ['PASS', 'QUALITY', 'WARN', 'FAIL', 'SKIP', 'ERROR']",
                                        "$: undocumented field 'extra'"}


def test_schema_version_matches_the_code():
    assert SCHEMA["properties"]["schema_version"]["const"] == RESULT_SCHEMA_VERSION


@pytest.mark.parametrize("name, select", [("healthy", ("FWD",)), ("reversed_t", ("FWD",)), ("leaky_terminal", ("FWD004",))],
                         ids=["healthy", "failing", "warning"])
def test_real_reports_validate(name, select, tmp_path):
    report = report_for(name, select)
    written = json.loads(report.write_json(tmp_path / "report.json").read_text())
    assert errors(written, SCHEMA) == []


def test_ignored_errored_and_baseline_reports_validate(tmp_path):
    report = run(HEALTHY_CKPT, Options(data=TINY_DATA, device="cpu", select=("FWD002", "FWD004", "PAR003"),
                                       ignore={"FWD002": "tested elsewhere"}, strict=True,
                                       baseline=HEALTHY_CKPT, report_dir=tmp_path))
    errored = replace(report.results[0], status=Status.ERROR, summary="check raised RuntimeError: boom",
                      observed={"x": float("nan")})
    written = json.loads(replace(report, results=(errored, *report.results[1:])).write_json(tmp_path / "r.json").read_text())
    assert written["baseline"]["figures"] and written["results"][0]["observed"] == {"x": "nan"}
    assert errors(written, SCHEMA) == []


def test_an_interrupted_report_validates(tmp_path):
    report = replace(report_for("healthy", ("FWD001",)), incomplete=True, not_run=("DIST001",))
    written = json.loads(report.write_json(tmp_path / "report.json").read_text())
    assert written["incomplete"] is True and written["not_run"] == ["DIST001"] and written["exit_code"] == 130
    assert errors(written, SCHEMA) == []
