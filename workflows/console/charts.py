"""Bar charts laid out for server-rendered SVG: geometry only, no database, no JavaScript."""
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Bar:
    label: str
    value: Decimal
    x: float
    y: float
    width: float
    height: float
    show_label: bool  # crowded axes label every n-th bar only; each bar keeps its tooltip


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    plot_bottom: float
    bars: list[Bar]
    maximum: Decimal

    @property
    def empty(self) -> bool:
        return not self.bars or self.maximum == 0


def bar_chart(points: Sequence[tuple[str, Decimal]], *, width: int = 720, height: int = 240, max_labels: int = 16) -> BarChart:
    """Vertical bars scaled to the largest value; room below the plot for labels."""
    label_room, top = 40, 20
    plot_height = height - label_room - top
    maximum = max((value for _, value in points), default=Decimal(0))
    slot = width / max(len(points), 1)
    bar_width = min(slot * 0.8, 80)  # a lone bar stays a bar, not a wall
    every = max(1, -(-len(points) // max_labels))  # ceiling division
    bars = []
    for index, (label, value) in enumerate(points):
        bar_height = float(value / maximum) * plot_height if maximum > 0 else 0.0
        bars.append(Bar(
            label=label, value=value, x=index * slot + (slot - bar_width) / 2, y=top + plot_height - bar_height,
            width=bar_width, height=bar_height, show_label=index % every == 0,
        ))
    return BarChart(width=width, height=height, plot_bottom=top + plot_height, bars=bars, maximum=maximum)


def top_with_rest(
    points: Sequence[tuple[str, Decimal]], *, keep: int = 15, rest_label: str = "others"
) -> list[tuple[str, Decimal]]:
    """The ``keep`` largest points, the rest summed into one, so a chart of a thousand projects stays readable."""
    ordered = sorted(points, key=lambda point: point[1], reverse=True)
    if len(ordered) <= keep:
        return ordered
    return [*ordered[:keep], (rest_label, sum((value for _, value in ordered[keep:]), Decimal(0)))]
