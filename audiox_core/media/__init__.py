"""Media handling: probing, scene detection, frames, mixing and muxing."""
