"""Training: the loop, the optimizer and schedules, moving averages, checkpoints, data parallelism."""
