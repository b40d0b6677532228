"""Training and evaluation programs: `zerograd-train` and `zerograd-eval`."""
