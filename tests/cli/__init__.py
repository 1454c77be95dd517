"""Tests of rewardkit.cli."""
