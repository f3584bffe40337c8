"""observability layer of octoroute."""
