"""Sources of samples: landing files, Prometheus, log files, the demo fleet."""
