"""Load and memory benchmarks for shardgate, run side by side with SeaweedFS and an in-memory
aiohttp ceiling on the same machine, so that every figure is read as a ratio."""
