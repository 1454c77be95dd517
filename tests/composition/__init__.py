"""Tests of rewardkit.composition."""
