"""Pure streaming detectors: readings in (numpy arrays, time comes with them), findings out. No I/O, no clock."""
