"""Developer tooling: fakes, demo and synthetic data generators, benchmarks. Never imported by the stages."""
