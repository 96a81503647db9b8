"""How far a release has come, as the console and ``release_follow`` show it: pure, no database."""
from .choices import FINAL, ReleaseState

S = ReleaseState
# Share of the way from filing to a finished deploy that each state stands for.
PROGRESS = {
    S.REQUESTED: 0, S.APPROVED: 10, S.BUILDING: 25, S.DEPLOYING: 50, S.VERIFYING: 75, S.ROLLING_BACK: 90,
}
SUCCESS = S.SUCCEEDED


def release_progress(state: str) -> int:
    """Percent done; every final state is 100 (done, one way or the other)."""
    return 100 if state in FINAL else PROGRESS.get(state, 0)


def progress_bar(state: str, width: int = 30) -> str:
    """``[#########---------------------]  30% building`` for a terminal."""
    percent = release_progress(state)
    filled = round(width * percent / 100)
    return f"[{'#' * filled}{'-' * (width - filled)}] {percent:3d}% {state}"


def is_final(state: str) -> bool:
    return state in FINAL


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "running"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"
