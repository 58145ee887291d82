"""How big a generated world is."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    """Sizes of a generated world. `enrollments_per_user` is a mean (0 … 2×mean each)."""

    name: str
    users: int
    courses: int
    enrollments_per_user: float
    user_groups: int
    payments: int
    skills: int
    competencies: int
    learning_paths: int
    instructor_led_trainings: int
    materials: int
    #: Rows of a saved report's CSV are capped here: real reports are rendered, not dumped.
    report_rows: int
    history_days: int = 3 * 365
    #: Required training mostly done, as in a real account (generator._settle_required_training).
    #: Off for tiny: its few progresses are nearly all required, and tests of change detection
    #: need some that still move when days pass (a passed progress never moves by itself).
    settle_required_training: bool = True


SCALES: dict[str, Scale] = {
    "tiny": Scale(
        name="tiny",
        users=30,
        courses=5,
        enrollments_per_user=2.5,
        user_groups=4,
        payments=20,
        skills=6,
        competencies=3,
        learning_paths=2,
        instructor_led_trainings=2,
        materials=5,
        report_rows=200,
        settle_required_training=False,
    ),
    "demo": Scale(
        name="demo",
        users=3_000,
        courses=60,
        enrollments_per_user=6.0,
        user_groups=40,
        payments=1_500,
        skills=30,
        competencies=12,
        learning_paths=10,
        instructor_led_trainings=12,
        materials=150,
        report_rows=5_000,
    ),
    "large": Scale(
        name="large",
        users=100_000,
        courses=1_000,
        enrollments_per_user=10.0,
        user_groups=500,
        payments=50_000,
        skills=120,
        competencies=40,
        learning_paths=80,
        instructor_led_trainings=100,
        materials=3_000,
        report_rows=20_000,
    ),
}


def resolve_scale(scale: str | Scale) -> Scale:
    """A Scale from its name (tiny, demo, large) or itself."""
    if isinstance(scale, Scale):
        return scale
    try:
        return SCALES[scale]
    except KeyError:
        raise ValueError(f"unknown scale {scale!r}: use one of {', '.join(SCALES)}") from None
