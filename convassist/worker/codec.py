"""How jobs and their results travel through Redis: JSON, not arq's default pickle.

Unpickling runs code, so with pickle anyone who can write to Redis runs code in the worker and the
app. Our job arguments and results are plain JSON values (dicts, lists, strings, numbers).
"""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def loads(raw: bytes) -> Any:
    return json.loads(raw)
