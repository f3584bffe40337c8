"""Configuration: the TOML schema, its validation and the template.

``load_config`` is the only way to obtain a ``Config``; every problem in a file is reported at once
as a ``ConfigError`` whose lines each name a key path.
"""

from octoroute.config.load import ConfigError, load_config, parse_config, read_config_file
from octoroute.config.schema import (
    Config,
    EndpointConfig,
    HealthConfig,
    LimitsConfig,
    ModelsConfig,
    ObservabilityConfig,
    RoutingConfig,
    Secret,
    ServerConfig,
    TierSeconds,
    TimeoutsConfig,
)
from octoroute.config.template import TEMPLATE

__all__ = [
    "TEMPLATE",
    "Config",
    "ConfigError",
    "EndpointConfig",
    "HealthConfig",
    "LimitsConfig",
    "ModelsConfig",
    "ObservabilityConfig",
    "RoutingConfig",
    "Secret",
    "ServerConfig",
    "TierSeconds",
    "TimeoutsConfig",
    "load_config",
    "parse_config",
    "read_config_file",
]
