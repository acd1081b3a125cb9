"""Problem sets: the benchmarks shipped in this folder (gzipped package data, sources and
licences in README.md), local files, reasoning-gym generators and HF datasets."""
