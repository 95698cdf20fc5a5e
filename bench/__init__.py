"""backdrop's benchmark harness: `make bench` (or `python -m bench`). Results are ratios from one run."""
