"""The unblock plan as an SVG chart: geometry computed here, drawn by the template
(no JavaScript, no external library)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.analysis.unblock import UnblockStep

WIDTH = 640
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 16, 56


@dataclass(frozen=True)
class Bar:
    rank: int
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float

    @property
    def center(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    total: int
    #: y of the "all blocked tenants" line
    total_y: float
    baseline: float
    left: int
    ticks: tuple[tuple[int, float], ...]

    @property
    def points(self) -> str:
        """The cumulative line through the tops of the bars."""
        return " ".join(f"{b.center:.1f},{b.y:.1f}" for b in self.bars)


def unblock_chart(plan: Sequence[UnblockStep], blocked: int) -> Chart:
    """Cumulative tenants unblocked after each fix of ``plan``, out of ``blocked``."""
    total = max(blocked, max((s.cumulative_unblocked for s in plan), default=0), 1)
    inner_w = WIDTH - LEFT - RIGHT
    inner_h = HEIGHT - TOP - BOTTOM
    baseline = TOP + inner_h
    step = inner_w / max(len(plan), 1)
    bars = []
    for i, s in enumerate(plan):
        h = inner_h * s.cumulative_unblocked / total
        bars.append(
            Bar(
                rank=s.rank,
                label=s.subject,
                value=s.cumulative_unblocked,
                x=LEFT + i * step + step * 0.15,
                y=baseline - h,
                width=step * 0.7,
                height=h,
            )
        )
    marks = sorted({0, total, *(total * k // 4 for k in range(1, 4))})
    ticks = tuple((m, baseline - inner_h * m / total) for m in marks)
    return Chart(WIDTH, HEIGHT, tuple(bars), total, TOP, baseline, LEFT, ticks)
