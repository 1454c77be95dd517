"""Tests of rewardkit.train."""
