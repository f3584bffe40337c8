"""Allows ``python -m octoroute``, identical to the ``octoroute`` console script."""

from octoroute.cli import main

raise SystemExit(main())
