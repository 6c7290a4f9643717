"""Per-study objective normalisation: larger is better afterwards, whatever the study's direction.

It reuses serving's ``ObjectiveTransform`` (sign flip for minimisation, optional Yeo-Johnson, standardisation
by the study's own statistics), so past studies reach the model on the same scale as the live one.
"""

from __future__ import annotations

import numpy as np

from metabo.meta.study import DIRECTIONS
from metabo.normalise import ObjectiveTransform


def normalise_values(values: np.ndarray, direction: str, power: bool = True) -> tuple[np.ndarray, ObjectiveTransform]:
    """Normalised values (larger is better, standardised) and the fitted transform (``inverse`` undoes it).

    Args:
        values: raw objective values of one study.
        direction: ``"minimize"`` or ``"maximize"``.
        power: fit a Yeo-Johnson transform first (as serving does by default).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    values = np.asarray(values, dtype=np.float64)
    transform = ObjectiveTransform(maximize=direction == "maximize", power=power).fit(values)
    return transform.transform(values), transform
