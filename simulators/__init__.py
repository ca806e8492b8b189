"""Simulators: plant models with scripted incidents (demo_plant) and a real-time MQTT publisher (publish)."""
from simulators.demo_plant import DemoPlant, IncidentWindow

__all__ = ["DemoPlant", "IncidentWindow"]
