"""Helpers shared by the tests and the benchmarks: server processes, fake drivers and INDI servers, bridge
threads."""
