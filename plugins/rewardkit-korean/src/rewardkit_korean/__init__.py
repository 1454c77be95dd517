"""rewardkit plugin for the 2025 Korean grammar-QA competition (see `rewardkit_korean.plugin`)."""

from __future__ import annotations

from rewardkit_korean.exact_match import exact_match
from rewardkit_korean.format_check import format_error, is_well_formed
from rewardkit_korean.split import split_answer_reason

__version__ = "0.1.0"
__all__ = ["exact_match", "format_error", "is_well_formed", "split_answer_reason"]
