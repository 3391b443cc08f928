"""Public benchmarks: NAB (detection), Loghub (log clustering), demand traces (autoscaling)."""
