"""Per-study objective normalisation: larger is better afterwards, whatever the study's direction.

It reuses serving's ``ObjectiveTransform`` with the past-value steps of the one ``ValueTransformConfig`` (sign flip
for minimisation, Yeo-Johnson, standardisation by the study's own statistics), so past studies reach the model
as in fine-tuning.
"""

from __future__ import annotations

import numpy as np

from metabo.meta.study import DIRECTIONS
from metabo.normalise import DEFAULT_TRANSFORM, ObjectiveTransform, ValueTransformConfig


def normalise_values(values: np.ndarray, direction: str, transform: ValueTransformConfig = DEFAULT_TRANSFORM
                     ) -> tuple[np.ndarray, ObjectiveTransform]:
    """Normalised values (larger is better, standardised) and the fitted transform (``inverse`` undoes it).

    Args:
        values: raw objective values of one study.
        direction: ``"minimize"`` or ``"maximize"``.
        transform: the value transform; its ``for_past_values()`` steps apply.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    values = np.asarray(values, dtype=np.float64)
    fitted = ObjectiveTransform(direction == "maximize", transform.for_past_values()).fit(values)
    return fitted.transform(values), fitted
