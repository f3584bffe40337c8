"""upstream layer of octoroute."""
