"""octoroute: an OpenAI-compatible router for a self-hosted fleet of LLM servers.

It sends each chat request to the cheapest model tier (``fast``, ``balanced``, ``deep``) that
will answer it well, balances across the endpoints of that tier, and survives the loss of any
one of them.
"""

__version__ = "0.1.0"
