"""Configuration: the typed plant model, the standards presets and the shipped plant files."""
