"""Retries with exponential backoff for transient failures, and which failures those are.

Only a failure a later attempt can fix is retried: a dropped connection, a 5xx, a
timeout, and, among file-system errors, those of a flaky disk or network share
(:data:`TRANSIENT_ERRNOS`). A full disk, a used-up quota, a read-only or forbidden
folder, a name too long... fail the session at once with what to do
(:func:`os_error`): retrying them only delays the same error.
"""

from __future__ import annotations

import errno
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from xnatpic.upload.errors import TransientError, UploadError

__all__ = ["TRANSIENT_ERRNOS", "RetryPolicy", "is_transient_os_error", "os_error",
           "with_retry"]

_log = logging.getLogger(__name__)
T = TypeVar("T")

#: File-system errors a retry may get past: I/O errors and stale handles of a network
#: share, interrupted or would-block calls, dropped connections, a busy file or lock.
TRANSIENT_ERRNOS = frozenset({
    errno.EIO, errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT, errno.ESTALE, errno.EBUSY,
    errno.ENOLCK, errno.EPIPE, errno.ECONNRESET, errno.ECONNABORTED, errno.ECONNREFUSED,
    errno.ENETDOWN, errno.ENETUNREACH, errno.ENETRESET, errno.EHOSTUNREACH,
    errno.EHOSTDOWN,
})
#: What to do about the usual permanent ones.
_HINTS = {
    errno.ENOSPC: "free space there (or choose another destination) and re-run; the "
                  "sessions already complete are kept",
    errno.EDQUOT: "the disk quota is used up: free space or raise the quota, then re-run",
    errno.EACCES: "you may not write there: fix the folder's permissions or choose another "
                  "destination",
    errno.EPERM: "the operation is not permitted there: fix the permissions or choose "
                 "another destination",
    errno.EROFS: "the file system is read-only: choose a writable destination",
    errno.ENAMETOOLONG: "the path is too long for the file system: use a shorter "
                        "destination path",
}


def is_transient_os_error(exc: OSError) -> bool:
    """Whether retrying may fix ``exc`` (its errno is in :data:`TRANSIENT_ERRNOS`)."""
    return exc.errno in TRANSIENT_ERRNOS


def os_error(where: str | Path, exc: OSError) -> UploadError:
    """The upload error for a file-system error at ``where``.

    Returns
    -------
    UploadError
        A :class:`TransientError` (retried) when :func:`is_transient_os_error`, else a
        plain :class:`UploadError` (never retried) saying what to do.

    Examples
    --------
    >>> err = os_error("/arc/x.dcm", OSError(errno.ENOSPC, "No space left on device"))
    >>> type(err).__name__, str(err).split(";")[0]
    ('UploadError', '/arc/x.dcm: No space left on device (not retried)')
    """
    reason = exc.strerror or str(exc)
    if is_transient_os_error(exc):
        return TransientError(f"{where}: {reason}")
    hint = _HINTS.get(exc.errno or 0, "retrying cannot fix this; correct it and re-run")
    return UploadError(f"{where}: {reason} (not retried); {hint}")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    Attempt ``n`` (from 1) waits ``min(base * 2**(n-1), cap)`` seconds times a random
    factor in [0.5, 1] (jitter, so parallel sessions do not retry in step).
    """

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt``."""
        return min(self.base * 2 ** (attempt - 1), self.cap) * random.uniform(0.5, 1.0)


def with_retry(step: Callable[[], T], *, what: str, policy: RetryPolicy,
               sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``step``; on :class:`TransientError` wait and run it again.

    ``step`` must be idempotent: it checks what the destination already holds before
    sending, so a retry after a failure whose outcome is unknown never sends twice.

    Raises
    ------
    UploadError
        When the last attempt fails too (with the number of attempts and the last error).
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            return step()
        except TransientError as exc:
            if attempt == policy.attempts:
                raise UploadError(f"{what}: failed {attempt} times, last: {exc}") from exc
            wait = policy.delay(attempt)
            _log.warning("%s: %s; retry %d/%d in %.1f s", what, exc, attempt,
                         policy.attempts - 1, wait)
            sleep(wait)
    raise AssertionError("unreachable")
