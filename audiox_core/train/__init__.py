"""Training and fine-tuning AudioX (behind ``audiox-studio train``): the data folder and its synthetic
builder, the VAE and DiT objectives, EMA, LoRA, resumable checkpoints and the training loop."""
