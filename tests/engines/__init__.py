"""Tests of rewardkit.engines."""
