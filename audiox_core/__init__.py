"""AudioX Studio engine: media analysis, the AudioX model, mixing and muxing.

Importable without Prefect or a database (DESIGN.md, "Layers and folders").
"""

__version__ = "0.1.0"
