"""routing layer of octoroute."""
