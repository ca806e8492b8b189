"""企业微信群机器人 (WeCom group robot): one POST to the robot's webhook, `?key=KEY`, markdown or text.

From the WeCom robot docs (群机器人配置说明, developer.work.weixin.qq.com/document/path/91770): markdown.content
at most 4096 bytes and text.content at most 2048 bytes of UTF-8 (longer is refused with errcode 40058, "exceed
max length"); at most 20 messages a minute per robot (more: 45009). Only text can @ people by mobile
(mentioned_mobile_list); markdown cannot, so a message whose recipients must be rung should use text.
"""
from __future__ import annotations

import logging

from alerting.channels.base import Message, SendResult
from alerting.channels.wire import cut_utf8, errcode_result, exchange, http_failure, json_body, with_query
from config.channels import WecomRobot

log = logging.getLogger("riskwatch.alerting.channels")

MAX_BYTES = {"markdown": 4096, "text": 2048}
TITLE_ROOM = 256      # bytes kept for the title and its markup when telling the notifier how long a text may be
THROTTLED = frozenset({45009})    # api freq out of limit
TRANSIENT = frozenset({-1})       # system busy
# 93000 (invalid webhook url: a wrong or deleted key) and every other code are for good


class WecomRobotChannel:
    kind = "wecom_robot"

    def __init__(self, cfg: WecomRobot):
        self.name = cfg.name
        self.per_minute = cfg.per_minute or 20
        self.max_chars = (MAX_BYTES[cfg.msgtype] - TITLE_ROOM) // 3  # a Chinese character is 3 bytes
        self._cfg = cfg

    def __repr__(self) -> str:
        return f"WecomRobotChannel(name={self.name!r}, msgtype={self._cfg.msgtype!r})"

    def payload(self, msg: Message) -> dict:
        kind = self._cfg.msgtype
        content = cut_utf8(f"**{msg.title}**\n{msg.text}" if kind == "markdown" else f"{msg.title}\n{msg.text}",
                           MAX_BYTES[kind])
        if kind == "markdown":
            return {"msgtype": "markdown", "markdown": {"content": content}}
        return {"msgtype": "text", "text": {"content": content, "mentioned_mobile_list": list(msg.to)}}

    def send(self, msg: Message) -> SendResult:
        key = self._cfg.key.get_secret_value()
        reply = exchange("POST", with_query(self._cfg.base_url, key=key), json_body(self.payload(msg)),
                         {"Content-Type": "application/json; charset=utf-8"}, self._cfg.timeout_s)
        result = http_failure(reply, key) or errcode_result(reply.json(), THROTTLED, TRANSIENT, key)
        log.debug("%s %s: %s %s", self.kind, self.name, result.provider_code or "-", result.detail)
        return result
