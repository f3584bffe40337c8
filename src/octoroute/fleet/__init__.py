"""fleet layer of octoroute."""
