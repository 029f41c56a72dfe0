"""AudioX Studio engine: media analysis, the AudioX model, mixing and muxing; importable without Prefect or a
database (README, "Architecture")."""

__version__ = "0.1.0"
