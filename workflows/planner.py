"""Pure decisions of the release process: approval policy and freeze windows.

No database here: callers pass plain values (or unsaved model instances) and
get answers they can test without I/O.
"""
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

MINUTES_PER_WEEK = 7 * 24 * 60


@dataclass(frozen=True)
class WeeklyWindow:
    timezone: str
    start_weekday: int  # Monday = 0
    start_time: time
    end_weekday: int
    end_time: time


@dataclass(frozen=True)
class OneOffWindow:
    starts_at: datetime
    ends_at: datetime


Window = WeeklyWindow | OneOffWindow


def approvals_missing(*, required: int, approvers: Iterable[int]) -> int:
    """How many more distinct approvers a release needs (each approver counts once)."""
    return max(0, required - len(set(approvers)))


def _week_minute(weekday: int, at: time) -> float:
    return weekday * 1440 + at.hour * 60 + at.minute + at.second / 60


def window_end(window: Window, now: datetime) -> datetime | None:
    """When ``window`` ends, if ``now`` (aware) is inside it; otherwise ``None``."""
    if isinstance(window, OneOffWindow):
        return window.ends_at if window.starts_at <= now < window.ends_at else None
    local = now.astimezone(ZoneInfo(window.timezone))
    minute = _week_minute(local.weekday(), local.timetz().replace(tzinfo=None))
    start = _week_minute(window.start_weekday, window.start_time)
    end = _week_minute(window.end_weekday, window.end_time)
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    remaining = (end - minute) % MINUTES_PER_WEEK
    # add wall-clock minutes in the window's zone, so a DST change does not shift the end
    end_local = (local.replace(tzinfo=None) + timedelta(minutes=remaining)).replace(second=0, microsecond=0)
    return end_local.replace(tzinfo=ZoneInfo(window.timezone)).astimezone(now.tzinfo)


def frozen_until(windows: Iterable[Window], now: datetime) -> datetime | None:
    """The moment releases may start again, or ``None`` if not frozen now.

    Back-to-back or overlapping windows are followed to the end of the last one.
    """
    windows = list(windows)
    until = None
    moment = now
    for _ in range(len(windows) + 1):
        ends = [end for end in (window_end(w, moment) for w in windows) if end is not None]
        if not ends:
            return until
        until = moment = max(ends)
    return until
