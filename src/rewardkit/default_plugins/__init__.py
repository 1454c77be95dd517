"""The built-in plugins: each module registers rewardkit's own parts through the same hooks as any plugin."""
