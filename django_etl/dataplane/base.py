"""The interface every adapter implements (read, check, sample, load), and what a load is asked and answers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from django_etl.configmodel import Strict
from django_etl.dataplane.netpolicy import Allowance, NetworkPolicy, NetworkRefused
from django_etl.errors import ConfigurationError, ConnectorError, StepFailure

if TYPE_CHECKING:
    from django_etl.dataplane.staging import StagedReader

# Files and objects are written whole (a re-run replaces the same path), so only these modes make sense.
FILE_MODES = ("append", "replace")


@dataclass(frozen=True)
class LoadRequest:
    """What a load writes and how (the load step's config) and which try asks (the ledger's key)."""

    dag_id: str
    run_id: str
    task_id: str
    mode: str = "append"
    table: str | None = None
    path: str | None = None
    format: str | None = None
    key: tuple[str, ...] = ()
    interval_column: str | None = None
    create_table: bool = True
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    on_schema_change: str = "fail"  # when staged columns differ from the table's (drift.py)

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.dag_id, self.run_id, self.task_id)

    def interval(self) -> tuple[datetime, datetime]:
        """The run's data interval, which mode 'replace_interval' replaces."""
        if self.data_interval_start is None or self.data_interval_end is None:
            raise StepFailure(
                "mode 'replace_interval' needs a run with a data interval (a scheduled run or backfill)"
            )
        return self.data_interval_start, self.data_interval_end


@dataclass(frozen=True)
class Written:
    """What a load wrote: the target's name and URI and its row count, or why nothing was written."""

    target: str
    uri: str
    rows: int
    skipped: str | None = None


class Adapter:
    """Reach one connector's system with its parsed config and decrypted secret (built only inside a task).

    ``read`` yields Arrow record batches of at most ``batch_size`` rows for a request (the extract step's
    config: query/table, path/format, endpoint/params...); ``check`` proves the connection works and returns
    a short description; ``sample`` returns a few rows for the admin's preview; ``load`` writes a staged
    dataset to the system and says what it wrote.
    """

    connector_type: ClassVar[str] = ""
    config_model: ClassVar[type[Strict]]
    # Whether ``read`` filters on request["watermark"] itself (else the extract filters the batches).
    reads_incrementally: ClassVar[bool] = False

    def __init__(
        self, name: str, config: Any, secret: dict[str, Any], allowance: Allowance | None = None
    ) -> None:
        self.name = name
        self.config = config
        self.secret = secret
        # What the connector's organization may reach beyond the platform's policy (docs/security.md).
        self.allowance = allowance or Allowance()

    @classmethod
    def refusals(cls, config: Any, allowance: Allowance) -> list[tuple[str, str]]:
        """(config key, why) for each target of ``config`` the network and path policy refuses (save time).

        The adapter checks the same targets again when it connects, with the rule it uses here.
        """
        return []

    def network(self) -> NetworkPolicy:
        try:
            return self.allowance.network()
        except ConfigurationError as exc:
            raise self.fail(str(exc)) from None

    def pin(self, host: str, port: int, key: str) -> str:
        """The checked address a connection to ``host``:``port`` goes to (no second resolution later)."""
        try:
            return self.network().pin(host, port, key=key)
        except NetworkRefused as exc:
            raise self.fail(str(exc)) from None

    def check(self) -> str:
        raise NotImplementedError

    def read(self, request: dict[str, Any], batch_size: int) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError

    def sample(self, limit: int = 10) -> pa.Table:
        raise self.fail(f"a {self.connector_type} connector has no preview")

    def load(self, request: LoadRequest, dataset: StagedReader) -> Written:
        raise self.fail(f"{self.connector_type} connectors cannot be load targets")

    def fail(self, cause: str, *, retryable: bool = False) -> ConnectorError:
        return ConnectorError(f"connector {self.name!r}: {cause}", retryable=retryable)


class WholeFileTarget:
    """The load of file-like adapters: one path written whole or not at all, so a re-run replaces it."""

    connector_type: ClassVar[str]
    name: str

    def write(self, path: str, batches: Iterable[pa.RecordBatch], schema: pa.Schema, fmt: str | None) -> int:
        raise NotImplementedError

    def load(self, request: LoadRequest, dataset: StagedReader) -> Written:
        if request.mode not in FILE_MODES:
            raise StepFailure(
                f"mode {request.mode!r} applies to database targets; files take {' or '.join(FILE_MODES)}"
            )
        if not request.path:
            raise StepFailure(f"a {self.connector_type} load needs 'path'")
        rows = self.write(request.path, dataset.to_batches(batch_size=65_536), dataset.schema, request.format)
        return Written(request.path, f"{self.connector_type}://{self.name}/{request.path}", rows)
