"""OpenLineage for pipeline steps: dataset names of the real tables, files and objects, and the facets of a step.

Two halves. ``dataset_locations`` runs in the task (``airflow_plugin.runtime``) before the step does its work:
it names what an extract reads and a load writes outside the staging area, following the OpenLineage naming
spec, from the connector's config only (never its secret); the names go into the result manifest. Then
``operator_lineage`` builds the provider's ``OperatorLineage`` for ``EtlStepOperator.get_openlineage_facets_*``
from that manifest: inputs, outputs, schemas, column lineage, row counts and data-quality assertions.

Names (https://openlineage.io/docs/spec/naming):

| system | namespace | name |
| --- | --- | --- |
| PostgreSQL | ``postgres://{host}:{port}`` | ``{database}.{schema}.{table}`` |
| SQLite (no convention in the spec) | ``sqlite://{worker host}{absolute file path}`` | ``{table}`` |
| local files, staged datasets | ``file://{worker host}`` | absolute path |
| S3 (and S3-compatible) | ``s3://{bucket}`` | object key |
| HTTP APIs | ``{scheme}://{host}[:{port}]`` | endpoint path |

Only the standard library is imported at module level: the operators module, which Airflow imports at every
DAG-file parse, reaches this module only inside the OpenLineage methods, and the provider's classes load there.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any
from urllib.parse import urlsplit

from airflow_plugin import columnlineage

log = logging.getLogger(__name__)

PRODUCER = "https://github.com/django-etl/django-etl"
# Our column-level words in OpenLineage's transformation vocabulary (type, subtype, description).
TRANSFORMATIONS = {
    "direct": ("DIRECT", "IDENTITY", "copied unchanged"),
    "filtered": ("DIRECT", "IDENTITY", "copied unchanged from the rows a condition kept"),
    "derived": ("DIRECT", "TRANSFORMATION", "computed from the input value"),
    "aggregated": ("DIRECT", "AGGREGATION", "aggregated over groups of rows"),
}


# ---------------------------------------------------------------- naming (task process, no OpenLineage import)
def dataset_locations(step_type: str, config: Any, connectors: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``{"source": …}`` for an extract, ``{"target": …}`` for a load, ``{}`` otherwise; never raises.

    Each location is ``{"namespace", "name", "kind", "connector"}`` (+ ``"tables"`` for a query: the tables
    it reads, parsed by sqlglot). Built from the connector's type and config: no secret is read.
    """
    role = {"extract": "source", "load": "target"}.get(step_type)
    if role is None:
        return {}
    try:
        connector_name = _value(config, "connector")
        runtime = connectors.get(connector_name) or {}
        location = locate(runtime.get("type"), runtime.get("config") or {}, config, reading=role == "source")
    except Exception as exc:  # lineage is a by-product: it never fails a step
        log.warning("lineage: could not name the %s of the step: %s", role, exc)
        return {}
    if location is None:
        return {}
    return {role: {**location, "connector": connector_name}}


def locate(connector_type: str | None, connector: dict[str, Any], step: Any, *, reading: bool) -> dict | None:
    """The OpenLineage namespace and name of what a step reads or writes through one connector."""
    table, path = _value(step, "table"), _value(step, "path")
    if connector_type == "database":
        engine = connector.get("engine")
        query = _value(step, "query") if reading else None
        if engine == "postgresql":
            namespace = f"postgres://{connector.get('host') or 'localhost'}:{connector.get('port') or 5432}"
            qualify = _postgres_name(connector)
            dialect = "postgres"
        elif engine == "sqlite":
            namespace = f"sqlite://{_host()}{os.path.abspath(str(connector.get('path') or ''))}"

            def qualify(name: str) -> str:
                return name.split(".")[-1]

            dialect = "sqlite"
        else:
            return None
        if query:
            tables = [
                {"namespace": namespace, "name": qualify(name)} for name in query_tables(query, dialect)
            ]
            return {"namespace": namespace, "name": "query", "kind": "query", "query": True, "tables": tables}
        if not table:
            return None
        return {"namespace": namespace, "name": qualify(str(table)), "kind": "table"}
    if connector_type == "file" and path:
        root = os.path.abspath(str(connector.get("root") or "."))
        return {
            "namespace": f"file://{_host()}",
            "name": os.path.normpath(os.path.join(root, path)),
            "kind": "file",
        }
    if connector_type == "cloud" and path:
        prefix = str(connector.get("prefix") or "").strip("/")
        key = f"{prefix}/{path.lstrip('/')}" if prefix else path.lstrip("/")
        return {"namespace": f"s3://{connector.get('bucket')}", "name": key, "kind": "object"}
    if connector_type == "api":
        base = urlsplit(str(connector.get("base_url") or ""))
        endpoint = str(_value(step, "endpoint") or "")
        name = "/" + "/".join(p.strip("/") for p in (base.path, endpoint) if p.strip("/"))
        return {"namespace": f"{base.scheme}://{base.netloc}", "name": name, "kind": "endpoint"}
    return None


def staged_identity(uri: str) -> tuple[str, str]:
    """(namespace, name) of a staged dataset: its Parquet folder on the worker, or its S3 prefix."""
    if uri.startswith("s3://"):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return f"s3://{bucket}", key
    return f"file://{_host()}", os.path.abspath(uri.removeprefix("file://"))


def query_tables(query: str, dialect: str) -> list[str]:
    """The tables an extract query reads (``schema.table`` as written), or [] when sqlglot cannot tell."""
    try:
        import sqlglot
        from sqlglot import exp
        from sqlglot.optimizer.scope import traverse_scope

        tree = sqlglot.parse_one(query, read=dialect)
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        names = []
        for scope in traverse_scope(tree):
            for source in scope.sources.values():
                if isinstance(source, exp.Table) and source.name and source.name not in ctes:
                    names.append(".".join(part for part in (source.db, source.name) if part))
        return sorted(set(names))
    except Exception:
        return []


def _postgres_name(connector: dict[str, Any]):
    database = connector.get("database")
    default_schema = connector.get("schema") or "public"

    def qualify(table: str) -> str:
        parts = [p.strip('"') for p in table.split(".")]
        schema, name = (parts[-2], parts[-1]) if len(parts) > 1 else (default_schema, parts[0])
        return ".".join(p for p in (database, schema, name) if p)

    return qualify


def _host() -> str:
    return socket.gethostname() or "localhost"


def _value(config: Any, key: str) -> Any:
    return config.get(key) if isinstance(config, dict) else getattr(config, key, None)


# ---------------------------------------------------------------- facets (inside the OpenLineage methods)
def operator_lineage(manifest: dict[str, Any] | None, *, dag_id: str = ""):
    """The provider's ``OperatorLineage`` of one step from its result manifest (empty without one)."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    if not manifest:
        return OperatorLineage()
    builder = _Builder(manifest, dag_id)
    return OperatorLineage(inputs=builder.inputs(), outputs=builder.outputs())


class _Builder:
    """Input and output datasets of one manifest, with their facets."""

    def __init__(self, manifest: dict[str, Any], dag_id: str) -> None:
        self.manifest = manifest
        self.kind = manifest.get("step_type")
        self.dag_id = dag_id
        self.locations = manifest.get("locations") or {}
        self.staged_inputs = [i for i in manifest.get("inputs") or [] if isinstance(i, dict)]
        # input dataset name (as column lineage names it) -> (namespace, name)
        self.identity: dict[str, tuple[str, str]] = {
            entry.get("dataset", ""): staged_identity(entry["uri"])
            for entry in self.staged_inputs
            if entry.get("uri")
        }

    def inputs(self) -> list:
        from openlineage.client.event_v2 import InputDataset

        datasets = []
        source = self.locations.get("source")
        if self.kind == "extract" and source:
            for namespace, name in self._source_names(source):
                datasets.append(InputDataset(namespace=namespace, name=name, facets={}))
        for entry in self.staged_inputs:
            if not entry.get("uri"):
                continue
            namespace, name = staged_identity(entry["uri"])
            facets = self._dataset_facets(entry)
            input_facets = {}
            if self.kind == "validate" and self.manifest.get("checks"):
                input_facets["dataQualityAssertions"] = self._assertions()
            datasets.append(
                InputDataset(namespace=namespace, name=name, facets=facets, inputFacets=input_facets)
            )
        return datasets

    def outputs(self) -> list:
        from openlineage.client.event_v2 import OutputDataset

        datasets = []
        doc = columnlineage.of_manifest(self.manifest)
        if self.kind == "load":
            target = self.locations.get("target")
            entry = self.staged_inputs[0] if self.staged_inputs else {}
            if target:
                facets = self._dataset_facets(entry)
                facets.update(self._column_facet(doc))
                written = next(iter(self.manifest.get("outputs") or []), {})
                datasets.append(
                    OutputDataset(
                        namespace=target["namespace"],
                        name=target["name"],
                        facets=facets,
                        outputFacets=self._statistics(written),
                    )
                )
            return datasets
        if self.kind == "validate":
            return datasets  # it reads and checks; it writes nothing
        for entry in self.manifest.get("outputs") or []:
            if not isinstance(entry, dict) or not entry.get("uri"):
                continue
            namespace, name = staged_identity(entry["uri"])
            facets = self._dataset_facets(entry)
            facets.update(self._column_facet(doc))
            datasets.append(
                OutputDataset(
                    namespace=namespace, name=name, facets=facets, outputFacets=self._statistics(entry)
                )
            )
        return datasets

    # ------------------------------------------------------------ pieces
    def _source_names(self, source: dict[str, Any]) -> list[tuple[str, str]]:
        if source.get("query"):
            return [(t["namespace"], t["name"]) for t in source.get("tables") or []]
        return [(source["namespace"], source["name"])]

    def _dataset_facets(self, entry: dict[str, Any]) -> dict[str, Any]:
        from openlineage.client.facet_v2 import schema_dataset, symlinks_dataset

        facets: dict[str, Any] = {}
        fields = [
            schema_dataset.SchemaDatasetFacetFields(name=f["name"], type=f.get("type"))
            for f in entry.get("schema") or []
            if isinstance(f, dict) and f.get("name")
        ]
        if fields:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=fields)
        if entry.get("dataset") and self.dag_id and entry.get("uri"):
            # The staged folder changes with every run; the pipeline's dataset name does not.
            facets["symlinks"] = symlinks_dataset.SymlinksDatasetFacet(
                identifiers=[
                    symlinks_dataset.Identifier(
                        namespace=f"django-etl://{self.dag_id}", name=entry["dataset"], type="DATASET"
                    )
                ]
            )
        return facets

    def _column_facet(self, doc: dict[str, Any]) -> dict[str, Any]:
        from openlineage.client.facet_v2 import column_lineage_dataset as cl

        names = dict(self.identity)
        source = self.locations.get("source")
        if self.kind == "extract" and source and not source.get("query"):
            names[source["name"]] = (source["namespace"], source["name"])
        fields = {}
        for column, entries in (doc.get("columns") or {}).items():
            input_fields = []
            for entry in entries:
                identity = names.get(entry.get("dataset"))
                if identity is None:
                    continue
                kind, subtype, description = TRANSFORMATIONS.get(
                    entry.get("transformation"), TRANSFORMATIONS["derived"]
                )
                input_fields.append(
                    cl.InputField(
                        namespace=identity[0],
                        name=identity[1],
                        field=entry["column"],
                        transformations=[
                            cl.Transformation(
                                type=kind, subtype=subtype, description=description, masking=False
                            )
                        ],
                    )
                )
            if input_fields:
                fields[column] = cl.Fields(inputFields=input_fields)
        return {"columnLineage": cl.ColumnLineageDatasetFacet(fields=fields)} if fields else {}

    def _statistics(self, entry: dict[str, Any]) -> dict[str, Any]:
        from openlineage.client.facet_v2 import output_statistics_output_dataset as stats

        rows = entry.get("rows")
        if rows is None:
            return {}
        size = entry.get("bytes")
        return {
            "outputStatistics": stats.OutputStatisticsOutputDatasetFacet(
                rowCount=int(rows), size=int(size) if size is not None else None
            )
        }

    def _assertions(self):
        from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq

        assertions = [
            dq.Assertion(
                assertion=str(check.get("name") or check.get("check")),
                success=bool(check.get("passed")),
                severity=check.get("severity"),
            )
            for check in self.manifest.get("checks") or []
            if isinstance(check, dict)
        ]
        return dq.DataQualityAssertionsDatasetFacet(assertions=assertions)


def lineage_of_try(task_instance: Any):
    """``OperatorLineage`` of the try ``task_instance`` ran, from the manifest it left in staging."""
    from django_etl.dataplane.staging import read_manifest

    manifest = read_manifest(task_instance.dag_id, task_instance.run_id, task_instance.task_id)
    return operator_lineage(manifest, dag_id=task_instance.dag_id)
