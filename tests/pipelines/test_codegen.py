"""The generated file text: golden file, deterministic literal, header that stays a comment."""

from __future__ import annotations

import ast
import os
import uuid
from pathlib import Path

import pytest

from django_etl.pipelines import codegen
from django_etl.pipelines.dagspec import build_spec
from tests.support.compiler_helpers import SHAPES, make_pipeline

GOLDEN = Path(__file__).parent / "golden" / "pipeline_dag.py.golden"


@pytest.mark.integration
def test_render_matches_golden_file(user, settings, tmp_path):
    """Regenerate after an intended change with UPDATE_GOLDEN=1, and review the diff."""
    from django_etl.connectors.models import Connector
    from django_etl.core.models import Organization

    settings.ETL_FILE_ROOTS = [str(tmp_path)]
    organization = Organization.objects.create(id=uuid.UUID(int=7), name="Golden Foods", slug="golden-foods")
    Connector.objects.create(
        name="landing",
        connector_type="file",
        organization=organization,
        created_by=user,
        config={"root": "x"},
    )
    pipeline = make_pipeline(
        organization,
        user,
        SHAPES["diamond"][0],
        pipeline_id=uuid.UUID(int=42),
        description="Daily orders, cleaned and joined.",
        metadata={"tags": ["sales"]},
        config={"schedule": "0 3 * * *", "timezone": "Europe/Paris", "params": {"day": {"type": "string"}}},
    )
    spec, report = build_spec(pipeline)
    assert not report, str(report)
    text = codegen.render(spec)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")
    # The generator trial-builds from the spec, not the text: the file's literal must be the spec exactly.
    literal_text = text.split("\nSPEC = ", 1)[1].split("\n\ndag = build_dag(SPEC)\n", 1)[0]
    assert ast.literal_eval(literal_text) == spec


def test_render_same_spec_same_bytes_whatever_the_key_order():
    spec = {
        "format": 1,
        "pipeline": {
            "id": str(uuid.UUID(int=1)),
            "dag_id": "pipeline_1",
            "name": "n",
            "organization": "o",
            "organization_name": "O",
            "version": "1.0.0",
            "spec_hash": "sha256:x",
        },
        "dag": {"b": 1, "a": [1, 2]},
        "steps": [],
    }
    reordered = {key: spec[key] for key in reversed(spec)}
    reordered["dag"] = {"a": [1, 2], "b": 1}
    assert codegen.render(spec) == codegen.render(reordered)


@pytest.mark.parametrize(
    "value",
    [
        {"sql": "select '\"\"\"' as q, 'it''s' -- \\n"},
        {"text": "line one\nline two\ttab", "unicode": "café ✓", "empty": {}, "list": []},
        {"nested": [{"n": None, "t": True, "f": False, "i": -3, "x": 1.5}], "escape": "\\x00\x00"},
    ],
)
def test_literal_round_trips_json_data(value):
    assert ast.literal_eval(codegen.literal(value)) == value


def test_literal_refuses_what_json_cannot_hold():
    with pytest.raises(TypeError, match="only JSON data"):
        codegen.literal({"when": object()})
    with pytest.raises(ValueError, match="no JSON"):
        codegen.literal(float("nan"))


def test_render_header_stays_a_comment_when_names_hold_newlines():
    spec = {
        "format": 1,
        "pipeline": {
            "id": str(uuid.UUID(int=3)),
            "dag_id": "pipeline_3",
            "name": 'evil\nimport os; os.system("x")',
            "organization": "o",
            "organization_name": "Org\r\nX",
            "version": "1.0.0\n",
            "spec_hash": "sha256:x",
        },
        "dag": {},
        "steps": [],
    }
    text = codegen.render(spec)
    tree = ast.parse(text)
    assert [type(node).__name__ for node in tree.body] == ["Expr", "ImportFrom", "Assign", "Assign"]
    assert "# Pipeline:      evil import os;" in text
    assert codegen.pipeline_id_in(text) == uuid.UUID(int=3)


def test_pipeline_id_in_ignores_files_without_the_marker():
    assert codegen.pipeline_id_in(f"# my own DAG\n{codegen.PIPELINE_ID_LINE}{uuid.UUID(int=1)}\n") is None
    assert codegen.pipeline_id_in(codegen.GENERATED_MARKER + "\n# nothing else\n") is None
