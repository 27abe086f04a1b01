"""What every stage shares: the run directory's layout, checkpoint files, the process group and device."""
