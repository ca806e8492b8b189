"""Notification channels, one module each: what a decided notification looks like on one provider's wire."""
from __future__ import annotations

from importlib import import_module

from alerting.channels.base import Channel

CLASSES = {"wecom_robot": "WecomRobotChannel", "wecom_app": "WecomAppChannel", "dingtalk_robot": "DingtalkRobotChannel",
           "aliyun_sms": "AliyunSmsChannel", "tencent_sms": "TencentSmsChannel", "webhook": "WebhookChannel",
           "email": "EmailChannel"}
IDEMPOTENT = {"webhook"}  # channels that deduplicate on our key: safe to send again after a crash mid-send


def build(cfg) -> Channel:
    """The channel for one `notify.channels` entry (a config.channels model), from its own module."""
    module = import_module(f"alerting.channels.{cfg.kind}")
    return getattr(module, CLASSES[cfg.kind])(cfg)
