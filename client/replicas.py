"""Several servers behind one scorer: each request goes to the replica with the fewest requests in flight, and a
replica that fails with a transient error (``UNAVAILABLE``: dead or restarting; ``DEADLINE_EXCEEDED``) is left
alone for a while, growing with its consecutive failures, while its requests are resent to the others.

``Replicas`` only chooses; ``dfguard.client.batch.RemoteScorer`` sends, and counts the sends of a request across
replicas against one retry budget.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .grpc_client import RetryPolicy

PROBE_WAIT = 0.05  # seconds between looks while every replica is being probed


@dataclass
class Replica:
    """One endpoint's state: requests in flight, consecutive failures, and until when it is left alone."""

    url: str
    in_flight: int = 0
    failures: int = 0
    down_until: float = 0.0


class Replicas:
    """Least-in-flight choice among ``urls`` (ties go round), skipping replicas that are cooling down; when all are,
    ``acquire`` waits for the first to come back. A replica back from cooling down takes one request (a probe)
    until it answers one, so a server still dead costs one failed send, not one per waiting request."""

    def __init__(self, urls: list[str], policy: RetryPolicy) -> None:
        if not urls:
            raise ValueError("no server to score on: give at least one --url")
        self.replicas = [Replica(url) for url in urls]
        self.policy = policy
        self._lock = threading.Lock()
        self._turn = 0  # where the round of ties starts: equal replicas take turns

    def acquire(self) -> int:
        """The index of the replica to send the next request to (counted in flight until ``release``)."""
        while True:
            with self._lock:
                now = time.monotonic()
                count = len(self.replicas)
                order = [(self._turn + k) % count for k in range(count)]
                free = [i for i in order if not self._probing(self.replicas[i])]
                up = [i for i in free if self.replicas[i].down_until <= now]
                if up:
                    chosen = min(up, key=lambda i: self.replicas[i].in_flight)
                    self.replicas[chosen].in_flight += 1
                    self._turn = (chosen + 1) % count
                    return chosen
                # the first to come back, or (every one probed now) a moment for a probe to finish
                wait = min((self.replicas[i].down_until - now for i in free), default=PROBE_WAIT)
            time.sleep(max(wait, 0.001))

    @staticmethod
    def _probing(replica: Replica) -> bool:
        """A replica that has failed and has a request in flight: that request is its probe."""
        return replica.failures > 0 and replica.in_flight > 0

    def release(self, index: int, *, failed: bool) -> None:
        """The request sent to replica ``index`` is over: ``failed`` (transiently) leaves the replica alone for the
        policy's backoff after its consecutive failures; a success clears them."""
        with self._lock:
            replica = self.replicas[index]
            replica.in_flight -= 1
            if failed:
                replica.failures += 1
                replica.down_until = time.monotonic() + self.policy.delay(replica.failures)
            else:
                replica.failures, replica.down_until = 0, 0.0
