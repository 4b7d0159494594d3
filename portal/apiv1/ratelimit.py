"""A per-token request limit for the API: at most N requests a minute per token, counted in each process.

A fixed one-minute window per token, kept in memory: cheap, no database write per request. With several
server processes each counts its own requests, so a token may make up to N x processes a minute.
"""

from __future__ import annotations

import math
import threading
import time

WINDOW_SECONDS = 60.0


class TokenRateLimit:
    """Counts requests per token in the current window; ``retry_after`` says when a refused caller may retry."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.per_minute = per_minute
        self._clock = clock
        self._windows: dict[int, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def retry_after(self, token_id: int) -> int | None:
        """Count one request of the token: None when it is allowed, else the seconds until the next window."""
        if self.per_minute <= 0:
            return None
        now = self._clock()
        with self._lock:
            start, count = self._windows.get(token_id, (now, 0))
            if now - start >= WINDOW_SECONDS:
                start, count = now, 0
            if count >= self.per_minute:
                return max(1, math.ceil(start + WINDOW_SECONDS - now))
            self._windows[token_id] = (start, count + 1)
            if len(self._windows) > 10_000:  # forget finished windows now and then
                self._windows = {key: value for key, value in self._windows.items()
                                 if now - value[0] < WINDOW_SECONDS}
        return None
