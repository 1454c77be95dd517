"""The `rewardkit` command: a thin shell over the modules (`main` parses and prints)."""
