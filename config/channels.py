"""Notification channel settings, one class per provider module in alerting/channels/ (chosen by `kind`).

Secrets (robot keys, signing secrets, AccessKey secrets, passwords) are `SecretStr`: they print as '**********'
and are read with `.get_secret_value()` only where a request is signed or sent. In a plant file write them as
`env:NAME` (see config/load.py). `base_url` exists so that tests (and a plant's own proxy) can point a channel at
another server; leave it at the provider's default in production.
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Channel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$", description="how routes name this channel")
    timeout_s: float = Field(10.0, gt=0, description="per request")
    per_minute: int | None = Field(None, ge=1, description="the provider's rate limit for this sender; default: "
                                   "the provider's documented one (robots: 20)")


class WecomRobot(_Channel):
    """WeCom (企业微信) group robot: POST {base_url}?key=KEY, markdown or text; 20 messages a minute."""

    kind: Literal["wecom_robot"]
    key: SecretStr = Field(description="the robot webhook's key= value")
    base_url: str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    msgtype: Literal["markdown", "text"] = "markdown"


class WecomApp(_Channel):
    """WeCom application message: gettoken (cached 2 h) then message/send to user ids."""

    kind: Literal["wecom_app"]
    corp_id: str
    corp_secret: SecretStr
    agent_id: int
    base_url: str = "https://qyapi.weixin.qq.com/cgi-bin"


class DingtalkRobot(_Channel):
    """DingTalk (钉钉) group robot with signing (加签): access_token + timestamp + HMAC-SHA256 sign; 20 a minute."""

    kind: Literal["dingtalk_robot"]
    access_token: SecretStr
    secret: SecretStr = Field(description="the robot's signing secret (SEC...)")
    base_url: str = "https://oapi.dingtalk.com/robot/send"


class AliyunSms(_Channel):
    """Aliyun SMS (阿里云短信) SendSms with a pre-approved template, signed with signature v3 (ACS3-HMAC-SHA256,
    Aliyun's current one) or the older RPC signature v1 (HMAC-SHA1)."""

    kind: Literal["aliyun_sms"]
    access_key_id: str
    access_key_secret: SecretStr
    sign_name: str = Field(description="the approved signature (签名), e.g. 示范工厂")
    template_code: str = Field(description="the approved template, e.g. SMS_123456789")
    signature: Literal["v1", "v3"] = Field("v3", description="v3: ACS3-HMAC-SHA256 (default); v1: the RPC "
                                           "HMAC-SHA1 signature, for a proxy that only speaks that")
    base_url: str = "https://dysmsapi.aliyuncs.com/"


class TencentSms(_Channel):
    """Tencent Cloud SMS (腾讯云短信) SendSms 2021-01-11, TC3-HMAC-SHA256, with a pre-approved template."""

    kind: Literal["tencent_sms"]
    secret_id: str
    secret_key: SecretStr
    sdk_app_id: str
    sign_name: str
    template_id: str
    region: str = "ap-guangzhou"
    template_params: list[str] = Field(["site", "tier", "area", "subject", "reason"],
                                       description="which message params fill the template's {1}, {2}, ...")
    base_url: str = "https://sms.tencentcloudapi.com/"


class Webhook(_Channel):
    """Generic webhook: POST the notification as JSON, signed with HMAC-SHA256 when a secret is set."""

    kind: Literal["webhook"]
    url: str
    secret: SecretStr | None = None


class Email(_Channel):
    """E-mail over SMTP (STARTTLS or SMTPS when asked), UTF-8 subject and body."""

    kind: Literal["email"]
    host: str
    port: int = Field(25, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(alias="from", description="the From address")


ChannelConfig = Annotated[Union[WecomRobot, WecomApp, DingtalkRobot, AliyunSms, TencentSms, Webhook, Email],
                          Field(discriminator="kind")]
