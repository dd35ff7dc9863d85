"""Training: the recipe, data, the loop, checkpoints, the run directory, reports, torchrun."""
