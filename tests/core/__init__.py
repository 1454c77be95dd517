"""Tests of rewardkit.core."""
