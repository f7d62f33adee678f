"""Domain exceptions. Messages say what went wrong, where, and how to fix it."""

from __future__ import annotations


class FedRecError(Exception):
    """Base class of every error fedrec raises on purpose."""


class ConfigError(FedRecError, ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


class NodeConfigError(ConfigError):
    """A SuperNode's ``--node-config`` is invalid: the node cannot train until restarted.

    The server recognises it in a client's error reply by its class name and leaves the
    node out of the rest of the run instead of asking it again every round.
    """


class DataError(FedRecError, ValueError):
    """An input data file is missing, malformed or inconsistent.

    ``path``, ``line`` and ``column`` locate the problem when known (``line`` is 1-based,
    counting the header as line 1 for CSV-like files).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.column = column
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class CheckpointError(FedRecError):
    """A checkpoint is missing, incomplete, or does not match its manifest hash."""


class PrivacyBudgetExceeded(FedRecError):
    """A client refuses to train because its privacy budget is spent."""


class AccountingError(FedRecError):
    """A privacy accountant cannot compute epsilon for the given parameters."""


class NotFittedError(FedRecError, RuntimeError):
    """A baseline recommender was asked for scores before it was fitted."""


class SignatureError(FedRecError):
    """A downloaded artifact does not verify against the pinned public key: do not use it."""


class CertError(FedRecError, ValueError):
    """Deployment key or certificate material is missing, invalid, or would be overwritten."""
