"""A cap on the task process's heap while tenant SQL runs in DuckDB: what its own memory_limit does not count.

DuckDB's ``memory_limit`` bounds its buffer manager (hash tables, sorts, aggregates), not every allocation: one
``repeat('a', 1500000000)`` or ``range(300000000)`` builds a 1.5 to 3 GB value outside it, and 2,048 of them in one
vector would take the worker (and whatever else the out-of-memory killer picks on the machine) down. While a
:class:`~airflow_plugin.steps.sqlbox.SqlBox` is open, the process's data segment (``RLIMIT_DATA``: heap and
private mappings) is capped at what it used when the box opened plus a headroom derived from
``ETL_DUCKDB_MEMORY_LIMIT`` (four times it, at least 2 GiB). An allocation past the cap fails inside DuckDB,
which raises its ordinary out-of-memory error (the step fails, naming the setting), and the connection stays
usable. The previous limit comes back when the last box closes. Linux only (elsewhere the cap is not set).
docs/security.md, "DuckDB SQL".
"""

from __future__ import annotations

import re
import threading

from django_etl import conf

__all__ = ["HeapCap", "headroom_bytes", "size_bytes"]

MIN_HEADROOM = 2 * 1024**3
UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def size_bytes(text: str) -> int:
    """Bytes of a DuckDB size (``512MB``, ``2GiB``: the forms conf.parse_size accepts)."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z]+)", str(text).strip().replace(" ", "").lower())
    if not found or found.group(2) not in UNITS:
        raise ValueError(f"{text!r} is not a size such as 512MB")
    return int(float(found.group(1)) * UNITS[found.group(2)])


def headroom_bytes() -> int:
    """How far the heap may grow while one box is open: 4 times ETL_DUCKDB_MEMORY_LIMIT, at least 2 GiB."""
    return max(MIN_HEADROOM, 4 * size_bytes(conf.value("ETL_DUCKDB_MEMORY_LIMIT")))


def data_segment_bytes() -> int | None:
    """The process's data segment now (VmData, what RLIMIT_DATA counts), or None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class HeapCap:
    """Process-wide: the first open box sets the cap, each further one widens it by its headroom, the last restores."""

    _lock = threading.Lock()
    _open: list[int] = []
    _baseline: int | None = None
    _previous: tuple[int, int] | None = None

    def __init__(self) -> None:
        self.headroom = headroom_bytes()
        self.active = False

    def __enter__(self) -> HeapCap:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def acquire(self) -> None:
        try:
            import resource
        except ImportError:  # not a POSIX system: no cap
            return
        cls = type(self)
        with cls._lock:
            if not cls._open:
                baseline = data_segment_bytes()
                if baseline is None:
                    return
                cls._baseline = baseline
                cls._previous = resource.getrlimit(resource.RLIMIT_DATA)
            cls._open.append(self.headroom)
            self.active = True
            cls._apply(resource)

    def release(self) -> None:
        if not self.active:
            return
        import resource

        cls = type(self)
        with cls._lock:
            self.active = False
            cls._open.remove(self.headroom)
            if cls._open:
                cls._apply(resource)
            elif cls._previous is not None:
                resource.setrlimit(resource.RLIMIT_DATA, cls._previous)
                cls._previous = cls._baseline = None

    @classmethod
    def _apply(cls, resource) -> None:
        assert cls._baseline is not None and cls._previous is not None
        previous_soft, hard = cls._previous
        soft = cls._baseline + sum(cls._open)
        for bound in (previous_soft, hard):
            if bound != resource.RLIM_INFINITY:
                soft = min(soft, bound)  # never looser than what the operator (or the system) set
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
