"""Every Redis key the app processes and the workers share, named in one place.

All live under `convassist:` except the reply cache, which keeps the `conv-assistant:cache:` prefix
of the first release so that cached replies survive an upgrade. Values never hold message content
in a key's name (the cache key is a hash).
"""

from __future__ import annotations

import hashlib

PREFIX = "convassist:"
CACHE_PREFIX = "conv-assistant:cache:"
RATE_LIMIT_PREFIX = PREFIX + "limit:"  # + the limit's name and whom it counts (services.ratelimit)
ML_JOB_OWNER_PREFIX = PREFIX + "mljob:"  # + job id → the provider who started a raw-prompt job
ML_CACHED_RESULT_PREFIX = PREFIX + "mljob-cached:"  # + job id → a raw-prompt job answered from the cache


def cache_key(digest: str) -> str:
    """A cached reply (the worker's result), by the hash of everything that decides it."""
    return CACHE_PREFIX + digest


def examples_key(*parts: str) -> str:
    """A suggestion prompt's examples (services.examples.examples_for), by the hash of its parts (whose,
    which conversation, how many, the search's text: no text in the name)."""
    return PREFIX + "examples:" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def claim_key(cache_key_: str) -> str:
    """The job generating what cache_key_ will hold: identical requests in flight join it."""
    return PREFIX + "inflight:" + cache_key_.removeprefix(CACHE_PREFIX)


def in_flight_jobs_key(owner: str) -> str:
    """A sorted set: an owner's (provider's) generation jobs queued or running → when they expire."""
    return PREFIX + "generating:" + owner


def stream_key(job_id: str) -> str:
    """A job's stream: who runs it, the reply so far (when streamed), and the result as last entry."""
    return PREFIX + "stream:" + job_id


def trainer_key(job_id: str) -> str:
    """A training job's trainer is alive (the worker running it refreshes this, with a TTL, while it runs)."""
    return PREFIX + "trainer:" + job_id


def workers_key(queue_name: str) -> str:
    """A sorted set: worker id → when its entry expires (Unix ms)."""
    return f"{queue_name}:workers"


def worker_key(queue_name: str, worker_id: str) -> str:
    """JSON of one worker's status (id, host, pid, threads, model), with a TTL."""
    return f"{queue_name}:worker:{worker_id}"


def ahead_key(queue_name: str) -> str:
    """A sorted set: conversations noted for suggestions ahead ("provider:conversation" → when noted),
    taken by the workers of that queue (services.ahead)."""
    return f"{queue_name}:ahead"


def wake_key(queue_name: str) -> str:
    """A list the app pushes to after queueing a job; the worker blocks on it between polls."""
    return f"{queue_name}:wake"


def live_channel(provider_id: str) -> str:
    """Pub/sub: the names of what changed in a provider's data (services.live), for their open pages."""
    return PREFIX + "live:" + provider_id
