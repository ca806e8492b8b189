"""The provincial uplink: readings and alarms sent outbound to a provincial supervision platform, store-and-forward.

base.py is what a province's format follows, one module per province (hebei.py); queue.py the durable queue;
sender.py the loop that fills and drains it.
"""
from __future__ import annotations

from importlib import import_module

from alerting.uplink.base import Format
from config.uplink import UplinkConfig

FORMATS = {"hebei": "HebeiFormat"}  # province -> class in alerting/uplink/<province>.py


def build_format(cfg: UplinkConfig) -> Format:
    module = import_module(f"alerting.uplink.{cfg.province}")
    return getattr(module, FORMATS[cfg.province])(cfg)
