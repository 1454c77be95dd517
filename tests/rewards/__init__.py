"""Tests of rewardkit.rewards."""
