"""Retries with exponential backoff for transient failures."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from xnatpic.upload.errors import TransientError, UploadError

__all__ = ["RetryPolicy", "with_retry"]

_log = logging.getLogger(__name__)
T = TypeVar("T")


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
