"""A step whose template reaches outside the sandbox fails validation when it is saved, naming key and name."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from django_etl.pipelines.validation import validate_pipeline, validate_step

pytestmark = pytest.mark.django_db


def test_validate_step_refuses_template_reaching_the_environment(pipeline, make_step, file_connector):
    step = make_step(
        "grab keys",
        "extract",
        {"connector": "landing", "path": "{{ macros.uuid.os.environ.get('ETL_CREDENTIAL_KEYS') }}"},
        1,
    )
    problems = [(p.key, p.message, p.field) for p in validate_step(step)]
    assert (
        "config.path",
        "'macros' is not available in templates; variables: ds, ds_nodash, "
        "data_interval_start, data_interval_end, logical_date, run_id, params, conf",
        "config",
    ) in problems
    with pytest.raises(ValidationError) as caught:
        step.full_clean()
    assert "step 'grab keys' config.path: " in str(caught.value)


def test_validate_pipeline_refuses_unquoted_conf_in_sql(pipeline, make_step):
    make_step(
        "shape",
        "transform",
        {"operations": [{"op": "filter", "condition": "status = '{{ conf.status }}'"}]},
        1,
    )
    report = str(validate_pipeline(pipeline))
    assert (
        "step 'shape' config.operations[0].condition: {{ conf.status }} would put conf into SQL as text: "
        "end it with '| sql_literal' (a value) or '| sql_identifier' (a name)"
    ) in report


def test_validate_step_accepts_documented_templates(pipeline, make_step, file_connector):
    step = make_step(
        "daily file",
        "extract",
        {"connector": "landing", "path": "orders_{{ ds_nodash }}_{{ params.country | default('fr') }}.csv"},
        1,
    )
    assert not validate_step(step)
