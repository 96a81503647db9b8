"""Pure helpers of the console and release_follow: chart geometry and progress."""
from decimal import Decimal

from workflows.console.charts import bar_chart, top_with_rest
from workflows.timeline import format_duration, progress_bar, release_progress

D = Decimal


def test_bars_are_scaled_to_the_largest_value_and_stand_on_the_axis():
    chart = bar_chart([("a", D("1.00")), ("b", D("4.00")), ("c", D("0"))], width=300, height=240)

    heights = [bar.height for bar in chart.bars]
    assert heights[1] == chart.plot_bottom - 20 and heights[0] == heights[1] / 4 and heights[2] == 0
    assert all(bar.y + bar.height == chart.plot_bottom for bar in chart.bars)
    assert [bar.x < next_bar.x for bar, next_bar in zip(chart.bars, chart.bars[1:], strict=False)] == [True, True]
    assert not chart.empty and bar_chart([("a", D(0))]).empty and bar_chart([]).empty


def test_a_crowded_axis_labels_every_nth_bar():
    chart = bar_chart([(f"{day:02d}", D(day)) for day in range(1, 32)], max_labels=16)

    assert [bar.label for bar in chart.bars if bar.show_label][:3] == ["01", "03", "05"]


def test_many_projects_keep_the_largest_and_sum_the_rest():
    points = [(f"p{n}", D(n)) for n in range(1, 21)]

    top = top_with_rest(points, keep=3)

    assert top == [("p20", D(20)), ("p19", D(19)), ("p18", D(18)), ("others", sum(D(n) for n in range(1, 18)))]
    assert top_with_rest(points[:2], keep=3) == [("p2", D(2)), ("p1", D(1))]


def test_progress_of_each_state():
    assert [release_progress(s) for s in ("requested", "approved", "building", "deploying", "verifying")] == [0, 10, 25, 50, 75]
    assert {release_progress(s) for s in ("succeeded", "failed", "rolled_back", "cancelled", "rejected")} == {100}
    assert progress_bar("deploying", width=10) == "[#####-----]  50% deploying"
    assert (format_duration(None), format_duration(2.34), format_duration(125)) == ("running", "2.3 s", "2 min 05 s")
