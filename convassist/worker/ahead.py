"""The worker's background loop for suggestions computed ahead (services.ahead).

It takes a noted conversation only while the replies queue is empty — no click waits and none is
being answered by any worker (arq keeps a job in the queue's sorted set until it finishes) — and runs
one at a time, so a click that arrives meanwhile waits at most for that one generation.
"""

from __future__ import annotations

import asyncio
import logging
import time

from arq.constants import job_key_prefix
from redis.exceptions import RedisError

from convassist import keys
from convassist.services import ahead

log = logging.getLogger("convassist.worker.ahead")

IDLE_CHECK = 0.2  # seconds between looks at the replies queue while it is busy
WAIT = 5  # seconds a worker blocks for a noted conversation before looking again

# KEYS: the replies queue. ARGV: arq's job key prefix. 1 if any queued job still exists (a job whose worker
# was killed stays in the queue until arq's in-progress key runs out, ~5 min, but its job key expires with
# its claim: it is work for nobody and must not hold back suggestions computed ahead).
_BUSY = """
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, 99)) do
  if redis.call('EXISTS', ARGV[1] .. id) == 1 then return 1 end
end
return 0
"""


async def busy(redis, queue_name: str) -> bool:
    """Whether the replies queue holds a job someone may still wait for (queued, or running)."""
    return bool(await redis.eval(_BUSY, 1, queue_name, job_key_prefix))


async def run(ctx: dict) -> None:
    redis, queue_name = ctx["redis"], ctx["queue_name"]
    while True:
        try:
            if await busy(redis, queue_name):  # user-facing work first, on every worker
                await asyncio.sleep(IDLE_CHECK)
                continue
            item = await redis.bzpopmax(keys.ahead_key(queue_name), timeout=WAIT)
            if not item:
                continue
            if await busy(redis, queue_name):  # a click came while we waited: it goes first
                await redis.zadd(keys.ahead_key(queue_name), {item[1]: item[2]}, nx=True)
                continue
            provider_id, conversation_id = ahead.parse_member(item[1])
            started = time.perf_counter()
            outcome = await ahead.run_one(provider_id, conversation_id)
            log.info("ahead conversation=%s outcome=%s ms=%.0f", conversation_id, outcome,
                     (time.perf_counter() - started) * 1000)
        except asyncio.CancelledError:
            raise
        except (OSError, RedisError) as exc:  # Redis away: the worker's heartbeat says so; try again
            log.warning("ahead loop: %s", type(exc).__name__)
            await asyncio.sleep(1)
        except Exception as exc:  # one bad entry never stops the loop
            log.error("ahead entry failed type=%s", type(exc).__name__)
            await asyncio.sleep(0.5)
