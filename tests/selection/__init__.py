"""Tests of rewardkit.selection."""
