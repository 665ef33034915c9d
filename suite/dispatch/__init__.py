"""Executors and what they share: `plan` decides which runs start, `local` runs them on this
machine, `slurm` submits them as SLURM job arrays (options in `cluster`, code frozen by `snapshot`).
Both executors call `suite.execute.execute`, the one function a run is."""
