"""Tests of rewardkit.text."""
