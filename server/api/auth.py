"""Admin credentials: one token from the environment and/or a file of tokens that rotate.

Every token in ``FEDREC_ADMIN_TOKENS_FILE`` (one a line) is accepted beside
``FEDREC_ADMIN_TOKEN``; the file is read again whenever it changes, so a new token can be
added, clients moved to it and the old one removed, without a restart. The tokens guard
the admin routes only.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from pathlib import Path

from fedrec.server.api.errors import ApiError

logger = logging.getLogger(__name__)


class AdminTokens:
    """The admin tokens in force now."""

    def __init__(self, token: str = "", tokens_file: str = "") -> None:
        self.token = token
        self.path = Path(tokens_file) if tokens_file else None
        self._stamp: tuple[int, int] | None = None
        self._from_file: list[bytes] = []
        self._lock = threading.Lock()

    def _file_tokens(self) -> list[bytes]:
        if self.path is None:
            return []
        with self._lock:
            try:
                stat = os.stat(self.path)
            except OSError as err:
                if self._stamp is not None:
                    logger.warning("admin tokens file %s unreadable (%s): none", self.path, err)
                self._stamp, self._from_file = None, []
                return []
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                lines = self.path.read_text(encoding="utf-8").splitlines()
                self._from_file = [
                    line.strip().encode("utf-8")
                    for line in lines
                    if line.strip() and not line.lstrip().startswith("#")
                ]
                self._stamp = stamp
                logger.info("admin tokens: %d from %s", len(self._from_file), self.path)
            return list(self._from_file)

    def active(self) -> list[bytes]:
        """Every token accepted now."""
        single = [self.token.encode("utf-8")] if self.token else []
        return single + self._file_tokens()

    def check(self, token: str | None) -> None:
        """403 when no token is configured (admin routes off), 401 unless ``token`` is one."""
        active = self.active()
        if not active:
            raise ApiError(
                403,
                "admin_disabled",
                "admin routes are disabled: set FEDREC_ADMIN_TOKEN or FEDREC_ADMIN_TOKENS_FILE",
            )
        # Compared as bytes: a header is any latin-1 text (Starlette's decoding), which
        # compare_digest refuses on str once it is not ASCII. Every token is compared.
        sent = token.encode("latin-1", errors="replace") if token is not None else b""
        matched = [hmac.compare_digest(sent, t) for t in active]
        if token is None or not any(matched):
            raise ApiError(401, "unauthorized", "missing or wrong X-Admin-Token")
