"""The wire format's base: camelCase JSON on the wire, snake_case in Python, unknown fields refused.

Service inputs are these models too: their limits live in one place, and the API (as request
bodies) and the Reflex states (through `parse`) hand the services the same validated values.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from convassist.services.errors import DomainError

M = TypeVar("M", bound=BaseModel)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value: str) -> str:
    """Text PostgreSQL can store: NUL (U+0000) characters removed, lone UTF-16 surrogates (half of
    an emoji cut in two) replaced by U+FFFD. A Mac's chat.db holds both now and then; refusing them
    would fail the batch on every retry and wedge the Mac's sync."""
    if value.isascii():
        return value.replace("\x00", "") if "\x00" in value else value
    return _LONE_SURROGATE.sub("\ufffd", value.replace("\x00", ""))


def _clean_if_text(value: Any) -> Any:
    return clean_text(value) if isinstance(value, str) else value


# Every string an outside caller can make us store is of this type. It cleans *before* pydantic's
# own check, which refuses a string holding a lone surrogate.
CleanStr = Annotated[str, BeforeValidator(_clean_if_text)]


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def describe(exc: Any) -> str:
    """The fields a ValidationError (pydantic's or FastAPI's) names and why — never the input value
    (it may be a password or message text)."""
    parts = []
    for err in exc.errors()[:5]:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        parts.append(f"{'.'.join(loc) or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "The input is not valid."


MAX_OFFSET = 10_000_000  # past any provider's history; keeps an offset inside PostgreSQL's bigint


def check_page(limit: int, offset: int, max_limit: int) -> None:
    """A list page's bounds, for every path into a list (API query, Reflex state)."""
    if not (1 <= limit <= max_limit and 0 <= offset <= MAX_OFFSET):
        raise DomainError(f"limit must be 1-{max_limit} and offset 0-{MAX_OFFSET}.", code="invalid_page", status=422)


def form_fields(form: Any) -> dict:
    """A Reflex form's submitted fields; {} for anything else a hand-crafted event may send."""
    return form if isinstance(form, dict) else {}


def parse(model: type[M], data: Any) -> M:
    """data (a form's dict, a handler's arguments) as a validated model; DomainError 422 otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise DomainError(describe(exc), code="validation_error", status=422) from None
