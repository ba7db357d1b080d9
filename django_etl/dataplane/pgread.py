"""What a PostgreSQL read-only transaction does not stop: functions a tenant's source query may not call.

``BEGIN READ ONLY`` refuses writes to tables, sequences and the catalog, but not everything that changes the
server: PostgreSQL 15 lets ``lo_create``, ``lo_from_bytea``, ``lo_import`` and ``lo_put`` write large objects in
a read-only transaction (``lo_export`` writes a file on the database server), ``pg_notify`` and
``pg_logical_emit_message`` send, the admin functions reload, rotate, terminate and create replication slots,
``set_config`` changes the session, and ``query_to_xml('…')`` runs SQL given as a string, where no check of
the query's text could see it. So the query's text is tokenized as PostgreSQL reads it (strings, ``$tag$``
quotes, quoted identifiers, nested comments) and every identifier is compared with the names below, whether
written plainly, quoted (``"lo_import"``) or qualified (``pg_catalog.lo_import``); ``U&"…"`` identifiers,
which could spell a name with escapes, are refused too. This is the second layer: the read-only session stays
the first. docs/security.md, "Source queries".
"""

from __future__ import annotations

import re

__all__ = ["side_effect_refusal"]

# name -> why it is refused (what a reader is told)
WRITES = "writes even in a read-only transaction"
RUNS_SQL = "runs SQL given as a string, which no check can read"
SERVER = "acts on the database server, not on data"
REFUSED: dict[str, str] = {
    **dict.fromkeys(
        (
            "lo_create",
            "lo_creat",
            "lo_from_bytea",
            "lo_import",
            "lo_export",
            "lo_put",
            "lo_unlink",
            "lo_truncate",
            "lo_truncate64",
            "lo_open",
            "lowrite",
            "pg_notify",
            "pg_logical_emit_message",
            "pg_file_write",
            "pg_file_rename",
            "pg_file_unlink",
            "pg_file_sync",
        ),
        WRITES,
    ),
    **dict.fromkeys(
        (
            "query_to_xml",
            "query_to_xml_and_xmlschema",
            "query_to_xmlschema",
            "cursor_to_xml",
            "cursor_to_xmlschema",
        ),
        RUNS_SQL,
    ),
    "set_config": "changes the session's settings (its time limit, its read-only mode)",
    **dict.fromkeys(
        (
            "pg_read_file",
            "pg_read_binary_file",
            "pg_stat_file",
            "pg_reload_conf",
            "pg_rotate_logfile",
            "pg_terminate_backend",
            "pg_cancel_backend",
            "pg_promote",
            "pg_switch_wal",
            "pg_create_restore_point",
            "pg_backup_start",
            "pg_backup_stop",
            "pg_start_backup",
            "pg_stop_backup",
            "pg_import_system_collations",
        ),
        SERVER,
    ),
}
REFUSED_PREFIXES: dict[str, str] = {
    "dblink": RUNS_SQL,  # opens another connection, outside this read-only session
    "pg_ls_": SERVER,
    "pg_stat_reset": WRITES,
    "pg_create_": WRITES,  # replication slots (they keep WAL: the server's disk fills)
    "pg_drop_replication_slot": WRITES,
    "pg_replication_origin_": WRITES,
    "pg_copy_": WRITES,
}

# One token at a time; the groups say which kind (only identifiers matter, the rest is skipped whole).
_TOKEN = re.compile(
    r"""
    (?P<comment>--[^\n]*)
  | (?P<block>/\*)
  | (?P<unicode>[Uu]&")
  | (?P<quoted>"(?:[^"]|"")*")
  | (?P<escape>[Ee]'(?:[^'\\]|\\.|'')*')
  | (?P<string>'(?:[^']|'')*')
  | (?P<dollar>\$(?:[A-Za-z_\x80-\uffff][A-Za-z_0-9\x80-\uffff]*)?\$)
  | (?P<word>[A-Za-z_\x80-\uffff][A-Za-z_0-9$\x80-\uffff]*)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def _identifiers(sql: str):
    """Every identifier of ``sql`` as PostgreSQL folds it; None for one that cannot be read (U&"…")."""
    index, end = 0, len(sql)
    while index < end:
        found = _TOKEN.match(sql, index)
        if found is None:  # an unterminated quote: the rest is one string the server will refuse
            return
        kind, index = found.lastgroup, found.end()
        if kind == "block":
            index = _end_of_block_comment(sql, index)
        elif kind == "dollar":
            closing = sql.find(found.group(), index)
            index = end if closing < 0 else closing + len(found.group())
        elif kind == "word":
            yield found.group().lower()
        elif kind == "quoted":
            yield found.group()[1:-1].replace('""', '"')
        elif kind == "unicode":
            yield None


def _end_of_block_comment(sql: str, index: int) -> int:
    depth = 1
    while depth and index < len(sql):
        if sql.startswith("/*", index):
            depth, index = depth + 1, index + 2
        elif sql.startswith("*/", index):
            depth, index = depth - 1, index + 2
        else:
            index += 1
    return index


def side_effect_refusal(sql: str) -> str | None:
    """Why the source query ``sql`` may not run (it names a function listed above), or None."""
    for name in _identifiers(sql):
        if name is None:
            return 'U&"…" identifiers are not accepted in source queries (write the name plainly)'
        reason = REFUSED.get(name) or next(
            (why for prefix, why in REFUSED_PREFIXES.items() if name.startswith(prefix)), None
        )
        if reason is not None:
            return f"{name}() {reason}"
    return None
