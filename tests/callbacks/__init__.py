"""Tests of rewardkit.callbacks."""
