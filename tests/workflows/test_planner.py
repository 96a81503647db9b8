from datetime import UTC, datetime, time

import pytest

from workflows.planner import OneOffWindow, WeeklyWindow, approvals_missing, frozen_until

WEEKEND_FREEZE = WeeklyWindow("Europe/Berlin", start_weekday=4, start_time=time(18), end_weekday=0, end_time=time(8))


def berlin(*args) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo("Europe/Berlin"))


@pytest.mark.parametrize(
    ("now", "until"),
    [
        (berlin(2026, 11, 27, 17, 59), None),                       # Friday before the freeze
        (berlin(2026, 11, 27, 18, 0), berlin(2026, 11, 30, 8, 0)),  # Friday 18:00 sharp
        (berlin(2026, 11, 29, 12, 0), berlin(2026, 11, 30, 8, 0)),  # Sunday
        (berlin(2026, 11, 30, 7, 59), berlin(2026, 11, 30, 8, 0)),  # Monday just before
        (berlin(2026, 11, 30, 8, 0), None),                         # Monday 08:00: open
        (berlin(2026, 11, 25, 12, 0), None),                        # Wednesday
    ],
)
def test_weekly_freeze_wraps_over_the_weekend(now, until):
    assert frozen_until([WEEKEND_FREEZE], now) == until


def test_weekly_freeze_is_read_in_its_own_time_zone():
    # Friday 17:30 UTC is 18:30 in Berlin (winter): frozen
    assert frozen_until([WEEKEND_FREEZE], datetime(2026, 11, 27, 17, 30, tzinfo=UTC)) is not None
    assert frozen_until([WEEKEND_FREEZE], datetime(2026, 11, 27, 16, 30, tzinfo=UTC)) is None


def test_one_off_freeze():
    window = OneOffWindow(datetime(2026, 12, 24, tzinfo=UTC), datetime(2026, 12, 27, tzinfo=UTC))
    assert frozen_until([window], datetime(2026, 12, 25, tzinfo=UTC)) == datetime(2026, 12, 27, tzinfo=UTC)
    assert frozen_until([window], datetime(2026, 12, 27, tzinfo=UTC)) is None


def test_back_to_back_windows_are_followed_to_the_last_end():
    # a one-off freeze that ends inside the weekend freeze keeps the environment frozen until Monday
    holiday = OneOffWindow(berlin(2026, 11, 26, 0, 0), berlin(2026, 11, 28, 0, 0))
    assert frozen_until([holiday, WEEKEND_FREEZE], berlin(2026, 11, 26, 9, 0)) == berlin(2026, 11, 30, 8, 0)


@pytest.mark.parametrize(
    ("required", "approvers", "missing"), [(0, [], 0), (2, [], 2), (2, [7], 1), (2, [7, 7], 1), (2, [7, 8], 0)]
)
def test_each_approver_counts_once(required, approvers, missing):
    assert approvals_missing(required=required, approvers=approvers) == missing
