"""DeleteOptions: which `propagationPolicy` a DELETE asks for (the store carries it out).

kubectl sends DeleteOptions in the body (`--cascade=orphan|background|foreground`),
the official client often as the `propagationPolicy` query parameter; the
legacy `orphanDependents: true` means Orphan. Without either, Background.
"""

from __future__ import annotations

import json

from werkzeug.wrappers import Request

from .errors import ApiError, bad_request
from .store import PROPAGATION_POLICIES


def propagation_policy(request: Request) -> str:
    """The request's propagation policy (422 for an unknown one, as the real server answers)."""
    options: dict = {}
    if request.get_data():
        try:
            options = json.loads(request.get_data())
        except ValueError as error:
            raise bad_request(f"the request body could not be decoded: {error}") from error
        if not isinstance(options, dict):
            raise bad_request("the request body must be a DeleteOptions object")
    policy = request.args.get("propagationPolicy") or options.get("propagationPolicy")
    if policy is None:
        orphan = request.args.get("orphanDependents", options.get("orphanDependents"))
        return "Orphan" if orphan in (True, "true") else "Background"
    if policy not in PROPAGATION_POLICIES:
        supported = ", ".join(f'"{value}"' for value in PROPAGATION_POLICIES)
        message = f'Unsupported value: "{policy}": supported values: {supported}'
        raise ApiError(422, "Invalid", f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: {message}',
                       details={"group": "meta.k8s.io", "kind": "DeleteOptions", "causes": [
                           {"reason": "FieldValueNotSupported", "message": message, "field": "propagationPolicy"}]})
    return policy
