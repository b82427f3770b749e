"""`python -m convassist.worker`: run the worker (settings are validated first, with a clear message)."""

import logging
import sys

from convassist.settings import SettingsError, get_settings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # arq logs every job's arguments at INFO; arguments may carry message text, which never goes to a log
    logging.getLogger("arq.worker").setLevel(logging.WARNING)
    try:
        get_settings()
    except SettingsError as exc:
        print(f"convassist worker: {exc}", file=sys.stderr)
        return 2
    from convassist.worker.main import run

    run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
