"""The JAX Gemma model: architecture, trainer, checkpoints, sampling and scoring."""
