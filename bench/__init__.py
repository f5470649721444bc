"""Benchmarks of ocpp-swarm: figures and ratios against a baseline measured in the same run."""
