"""`python -m ml`: run the worker (settings are validated first, with a clear message)."""

import logging
import os
import sys

from convassist.settings import SettingsError, get_settings


# llama.cpp's CPU threads are an OpenMP team, and libgomp lets an idle thread spin ~300,000 times
# before it sleeps: after every token and every reply the model's idle thread keeps a core busy just
# when the worker's Python, Redis and the app need it (2 cores here). 10,000 spins still bridge the
# waits inside a token. Measured with bench/generation.py: cache-miss API/raw 1.09-1.12 -> 1.07, decode
# speed unchanged. Set before llama.cpp (libgomp) loads; an operator's own value wins.
SPINCOUNT = "10000"


def main() -> int:
    os.environ.setdefault("GOMP_SPINCOUNT", SPINCOUNT)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # arq logs every job's arguments at INFO; arguments may carry message text, which never goes to a log
    logging.getLogger("arq.worker").setLevel(logging.WARNING)
    try:
        get_settings()
    except SettingsError as exc:
        print(f"convassist worker: {exc}", file=sys.stderr)
        return 2
    from ml.worker import create_worker

    create_worker().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
