"""The AudioX model: configuration, network, checkpoint loading, samplers and generation."""
