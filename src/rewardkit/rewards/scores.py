"""A reward's output checked: one finite float or None per row."""

from __future__ import annotations

import math
from typing import SupportsFloat, cast

from rewardkit.core.errors import RewardError


def as_score(value: object, owner: str, index: int) -> float | None:
    """A reward's output for one row as float or None; NaN is None, anything else non-numeric is an error."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        # bool and str are refused: True or "1.0" taken as 1.0 hides a bug in the reward. numpy/torch scalars
        # are accepted only with a real numeric dtype (np.str_, np.bool_, complex are refused the same way).
        type_name = getattr(type(value), "__module__", "") + "." + type(value).__name__
        dtype = str(getattr(value, "dtype", ""))
        numeric = any(
            dtype.removeprefix("torch.").startswith(k)
            for k in ("float", "int", "uint", "bfloat", "half", "double", "long", "short")
        )
        if not type_name.startswith(("numpy.", "torch.")) or getattr(value, "ndim", None) != 0 or not numeric:
            raise RewardError(
                f"Reward {owner!r} returned {value!r:.40} ({type(value).__name__}) for completion "
                f"{index}; expected a float or None.",
                hint="return float scores.",
            )
    try:
        value = float(cast(SupportsFloat, value))  # int, float or a 0-d numeric numpy/torch scalar (checked above)
    except OverflowError:  # an int beyond float range
        raise RewardError(
            f"Reward {owner!r} returned an integer too large for a float for completion {index}; "
            "scores must be finite.",
            hint="clip the score.",
        ) from None
    if math.isnan(value):
        return None
    if math.isinf(value):
        raise RewardError(
            f"Reward {owner!r} returned {value} for completion {index}; scores must be finite.",
            hint="clip the score or return None for 'not applicable'.",
        )
    return value
