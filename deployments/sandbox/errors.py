"""API errors rendered as Kubernetes `Status` objects.

Clients (the official one included) parse `Status.reason`/`code` to decide what
went wrong, so every failure the sandbox reports has the same shape, reason and
message wording as the real API server's.
"""

from __future__ import annotations

from .resources import ResourceType


class ApiError(Exception):
    """A failed API request; `status()` is the body to send back."""

    def __init__(self, code: int, reason: str, message: str, *, details: dict | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict:
        body: dict = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(resource: ResourceType, name: str) -> dict:
    details = {"name": name, "kind": resource.plural}
    if resource.group:
        details["group"] = resource.group
    return details


def not_found(resource: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{resource.qualified_resource} "{name}" not found',
                    details=_details(resource, name))


def already_exists(resource: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{resource.qualified_resource} "{name}" already exists',
                    details=_details(resource, name))


def conflict(resource: ResourceType, name: str) -> ApiError:
    return ApiError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {resource.qualified_resource} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        details=_details(resource, name),
    )


def invalid(resource: ResourceType, name: str, causes: list[dict]) -> ApiError:
    """422 Invalid; `causes` are `{"field", "message"}` dicts as in the real StatusCause."""
    rendered = [f"{cause['field']}: {cause['message']}" for cause in causes]
    summary = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    details = {"name": name, "kind": resource.kind, "causes": [
        {"reason": cause.get("reason", "FieldValueInvalid"), "message": cause["message"], "field": cause["field"]}
        for cause in causes
    ]}
    if resource.group:
        details["group"] = resource.group
    return ApiError(422, "Invalid", f'{resource.qualified_kind} "{name}" is invalid: {summary}', details=details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)


def path_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", details={})


def method_not_allowed(method: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource "
                                             f"({method})", details={})


def not_acceptable() -> ApiError:
    return ApiError(406, "NotAcceptable", "only the following media types are accepted: application/json")


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format ({content_type or 'no content type'}) - "
                    "accepted media types include: application/json-patch+json, application/merge-patch+json, "
                    "application/apply-patch+yaml, application/strategic-merge-patch+json")


def too_many_requests() -> ApiError:
    return ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                    details={"retryAfterSeconds": 1}, headers={"Retry-After": "1"})


def service_unavailable() -> ApiError:
    return ApiError(503, "ServiceUnavailable", "The API server is temporarily unavailable "
                                               "(fault injected by the Slipway sandbox)")


def field_manager_required() -> ApiError:
    return ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                    "is required for apply patch",
                    details={"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
                        {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch",
                         "field": "fieldManager"}]})


def internal_error(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}")
