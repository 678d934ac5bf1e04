"""enjournal engine: config, envelope, bus, canonical model, workers, store, identity, CLI."""

__version__ = "0.1.0"
