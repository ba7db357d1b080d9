"""The one error base of the platform: every error raised on purpose says whether retrying may help."""

from __future__ import annotations


class EtlError(Exception):
    """An error the platform raises on purpose, with a message that names what is wrong and where.

    ``retryable`` tells Airflow's side what to do with it: True for trouble that may clear up (a network
    error, a lock timeout, HTTP 503), False for configuration and data errors that fail the same way again.
    Messages never carry a secret value.
    """

    retryable_by_default = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.retryable = self.retryable_by_default if retryable is None else retryable


class ConfigurationError(EtlError):
    """A configuration (a step's, a connector's, an operator's setting) cannot work: never retryable."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class ConnectorError(EtlError):
    """A connector could not do its job (names the connector and the cause)."""


class SchemaDriftError(ConnectorError):
    """Later data does not fit the schema the dataset started with (a data error: retrying will not help)."""


class StepFailure(EtlError):
    """A step cannot do its job; the message names the step's key or dataset at fault."""


class StepSkipped(EtlError):
    """Not a failure: the step has nothing it can work on (an input with no rows and no known columns).

    The task ends skipped; the tasks after it follow their trigger rules (skipped too, by default).
    """


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (its type name when it has none): drivers add pages of detail."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
