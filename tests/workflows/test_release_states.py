"""Every (state × action) pair of the release state machine, in one table."""
import pytest
from django_fsm import TransitionNotAllowed, can_proceed

from workflows.choices import ReleaseState as S
from workflows.choices import Step
from workflows.models import Release

ACTIONS = ["approve", "reject", "cancel", "start", "deploy", "verify", "succeed", "fail", "roll_back",
           "finish_rollback", "retry"]
ALLOWED = {
    S.REQUESTED: {"approve": S.APPROVED, "reject": S.REJECTED, "cancel": S.CANCELLED},
    S.APPROVED: {"cancel": S.CANCELLED, "start": S.BUILDING},
    S.REJECTED: {},
    S.CANCELLED: {},
    S.BUILDING: {"deploy": S.DEPLOYING, "fail": S.FAILED},
    S.DEPLOYING: {"verify": S.VERIFYING, "fail": S.FAILED},
    S.VERIFYING: {"succeed": S.SUCCEEDED, "fail": S.FAILED},
    S.SUCCEEDED: {},
    S.FAILED: {"roll_back": S.ROLLING_BACK, "retry": S.APPROVED},
    S.ROLLING_BACK: {"finish_rollback": S.ROLLED_BACK, "fail": S.FAILED},
    S.ROLLED_BACK: {},
}


def call(release: Release, action: str) -> None:
    method = getattr(release, action)
    method(step=Step.DEPLOY, reason="boom") if action == "fail" else method()


@pytest.mark.parametrize("state", list(S))
@pytest.mark.parametrize("action", ACTIONS)
def test_transition_table(state, action):
    release = Release(state=state)
    target = ALLOWED[state].get(action)

    assert can_proceed(getattr(release, action)) is (target is not None)
    if target is None:
        with pytest.raises(TransitionNotAllowed):
            call(release, action)
        assert release.state == state
    else:
        call(release, action)
        assert release.state == target


def test_every_state_is_in_the_table():
    assert set(ALLOWED) == set(S)


def test_state_cannot_be_set_by_hand():
    release = Release(state=S.REQUESTED)
    with pytest.raises(AttributeError):
        release.state = S.SUCCEEDED


@pytest.mark.parametrize(("failed_step", "resumes_in"), [
    (Step.BUILD, S.BUILDING), (Step.DEPLOY, S.DEPLOYING), (Step.VERIFY, S.VERIFYING), (Step.ROLLBACK, S.ROLLING_BACK),
])
def test_a_retried_release_resumes_from_the_failed_step(failed_step, resumes_in):
    release = Release(state=S.FAILED, failed_step=failed_step)
    release.retry()
    release.start()
    assert release.state == resumes_in
    assert release.resume_step == ""


def test_failing_records_step_and_reason():
    release = Release(state=S.VERIFYING)
    release.fail(step=Step.VERIFY, reason="rollout exceeded its progress deadline")
    assert (release.failed_step, release.failure_reason) == ("verify", "rollout exceeded its progress deadline")
    assert release.finished_at is not None
