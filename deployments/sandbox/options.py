"""The write options of the request being served: field manager, dryRun, fieldValidation, force.

The app sets them once per request (`serving`); the store reads them where the
API server would (`current()`), so its method signatures stay those of plain
storage. Writes outside a request (the controller's) have no manager: their
fields are not tracked and they are not re-validated, as a trusted component's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from .errors import bad_request

_FIELD_VALIDATION = ("Ignore", "Warn", "Strict")


@dataclass
class WriteOptions:
    manager: str | None = None
    dry_run: bool = False
    field_validation: str = "Warn"  # the API server's default since 1.27
    force: bool = False
    subresource: str = ""
    applying: bool = False  # a server-side apply: unknown fields are refused whatever fieldValidation says
    warnings: list[str] = field(default_factory=list)


_current: ContextVar[WriteOptions | None] = ContextVar("sandbox_write_options", default=None)


def current() -> WriteOptions:
    return _current.get() or WriteOptions()


def from_request(args: dict, user_agent: str, subresource: str | None, applying: bool) -> WriteOptions:
    """Options from a request's query (400 for values the real server refuses)."""
    dry_run = args.get("dryRun")
    if dry_run not in (None, "All"):
        raise bad_request(f'Invalid dry run value: "{dry_run}": supported values: "All"')
    validation = args.get("fieldValidation") or "Warn"
    if validation not in _FIELD_VALIDATION:
        raise bad_request(f'fieldValidation: Unsupported value: "{validation}": supported values: '
                          '"Ignore", "Strict", "Warn"')
    force = args.get("force")
    if force not in (None, "true", "false"):
        raise bad_request(f'force: Invalid value: "{force}": must be true or false')
    # Like the API server, a request naming no manager is recorded under its user agent's product name.
    manager = args.get("fieldManager") or (user_agent.split("/", 1)[0][:128] or "unknown")
    return WriteOptions(manager=manager, dry_run=dry_run == "All", field_validation=validation,
                        force=force == "true", subresource=subresource or "", applying=applying)


def take_delete_options(body: dict) -> None:
    """A DELETE's `DeleteOptions` body may ask for a dry run, as the query may."""
    dry_run = body.get("dryRun") or []
    if any(value != "All" for value in dry_run):
        raise bad_request(f'Invalid dry run value: {dry_run}: supported values: "All"')
    if dry_run:
        current().dry_run = True


@contextmanager
def serving(options: WriteOptions) -> Iterator[WriteOptions]:
    token = _current.set(options)
    try:
        yield options
    finally:
        _current.reset(token)
