"""Speed of built networks: `darkforge benchmark` and the repository's benchmarks/ scripts."""
