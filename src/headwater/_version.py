"""headwater's version, in a module of its own so that any package may stamp it on what it saves
(contracts, checkpoints, models) without importing the package root."""

__version__ = "0.1.0"
