"""rewardkit's test suite: one folder a layer of src/rewardkit, project-level checks at the top."""
