"""The node's configuration, `<home>/config.toml`.

schema.py     the typed sections, their defaults and bounds; loading with
              environment overrides and readable errors
reference.py  `docs/configuration.md`, generated from the schema
"""
