"""Benchmarks: training-step cost (`step_time.py`) and the catastrophic-overfitting study (`co_study.py`)."""
