"""Tests of rewardkit.serve."""
