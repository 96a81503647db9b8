"""A correlation id per request, carried into Celery tasks and audit events."""
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

HEADER = "X-Request-ID"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}\Z")
current_correlation_id: ContextVar[str] = ContextVar("correlation_id", default="")


def new_correlation_id() -> str:
    return uuid.uuid4().hex


class CorrelationIdMiddleware:
    """Take the caller's X-Request-ID when it is sane, else make one; echo it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(HEADER, "")
        correlation_id = incoming if _VALID.match(incoming) else new_correlation_id()
        token = current_correlation_id.set(correlation_id)
        try:
            response = self.get_response(request)
        finally:
            current_correlation_id.reset(token)
        response[HEADER] = correlation_id
        return response


@contextmanager
def correlation_bound(correlation_id: str) -> Iterator[None]:
    """Run a task under the correlation id of the request that caused it."""
    token = current_correlation_id.set(correlation_id or new_correlation_id())
    try:
        yield
    finally:
        current_correlation_id.reset(token)
