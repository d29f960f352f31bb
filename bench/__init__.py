"""Side-by-side benchmarks of rcache against raw redis-py and the peer libraries."""
