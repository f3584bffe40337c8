"""api layer of octoroute."""
