"""Small real apps that use rcache: run them with ``scripts/demo`` (``python -m demo_sites``)."""
