"""kiemke benchmarks: `make bench` (never run as timed tests)."""
