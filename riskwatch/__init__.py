"""The riskwatch command line and the one place that wires the pipeline together."""
