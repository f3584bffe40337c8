"""wire layer of octoroute."""
