"""Training loops with progress bars, atomic checkpoints and metrics logs."""
