"""`sreops bench`: one module of benchmarks per stage, and the runner that gathers their rows."""
