"""NAB (Numenta Anomaly Benchmark) harness for riskwatch's anomaly scorer: run causally, write NAB's layout,
score with our own implementation of NAB's rules (scoring.py)."""
