"""The node's configuration, `<home>/config.toml`, and the files beside it.

    schema.py     the typed tables, their defaults and bounds (those of the
                  library types they configure)
    load.py       reading, environment overrides, readable errors
    write.py      a config as TOML again (`devnet init` writes it)
    reference.py  `docs/configuration.md`, generated from the schema
    chaos.py      `chaos.json`: run-time faults for chaos runs

The names below are the package's public surface.
"""

from node.config.load import ENV_PREFIX, config_from_table, load_config, parse_config, read_limited
from node.config.schema import CONFIG_FILE, NodeConfig, parse_host_port
from node.config.write import dump_config

__all__ = [
    "CONFIG_FILE",
    "ENV_PREFIX",
    "NodeConfig",
    "config_from_table",
    "dump_config",
    "load_config",
    "parse_config",
    "parse_host_port",
    "read_limited",
]
