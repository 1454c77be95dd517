"""Tests of rewardkit.generation."""
