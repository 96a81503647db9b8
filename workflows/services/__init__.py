"""Every write of the release process goes through these functions."""
from .ci_tokens import ci_token_authenticate, ci_token_create, ci_token_release_file, ci_token_revoke
from .middleware import middleware_instantiate, middleware_release
from .operations import application_decommission, application_scale
from .pipeline import StepRetry, lane_advance, lane_wait_reason, lanes_advance_due, step_run, steps_reap
from .releases import (
    approval_grant,
    approval_reject,
    release_cancel,
    release_change,
    release_file,
    release_file_with_upload,
    release_retry,
    release_rollback,
)

__all__ = [
    "StepRetry", "application_decommission", "application_scale", "approval_grant", "approval_reject",
    "ci_token_authenticate", "ci_token_create", "ci_token_release_file", "ci_token_revoke",
    "lane_advance", "lane_wait_reason", "lanes_advance_due", "middleware_instantiate", "middleware_release",
    "release_cancel", "release_change", "release_file", "release_file_with_upload",
    "release_retry", "release_rollback", "step_run", "steps_reap",
]
