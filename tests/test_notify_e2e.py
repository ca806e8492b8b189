"""Notifications end to end: `riskwatch serve` (real broker, real database) tells a webhook provider on loopback
about a red alert, with the secret read from the environment and never written to the log; `riskwatch
notify-test` reports the provider's answer."""
from __future__ import annotations

import subprocess
import sys
import time

from conftest import ROOT, RiskwatchProcess, wait_until
from fake_im import WEBHOOK_SECRET, FakeWebhook
from test_pipeline_e2e import Publisher


def notify_block(hook: FakeWebhook) -> dict:
    return {"channels": [{"name": "plant-webhook", "kind": "webhook", "url": hook.base + hook.path,
                          "secret": "env:RW_TEST_WEBHOOK_SECRET"}],
            "people": [{"name": "王班长", "level": "duty_operator", "phone": "13800000001"}],
            "routes": [{"tiers": ["red", "orange"], "areas": ["dust1"], "channels": ["plant-webhook"]}]}


def test_a_red_alert_reaches_the_webhook_once_and_the_secret_stays_out_of_the_log(tmp_path, broker, monkeypatch):
    monkeypatch.setenv("RW_TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)
    with FakeWebhook() as hook:
        rw = RiskwatchProcess(tmp_path, broker, notify=notify_block(hook)).start()
        try:
            pub = Publisher(broker)
            now = time.time()
            for i in range(20):
                pub.reading("dust1.hopper_t", now - 20 + i, 95.0)
            wait_until(lambda: any(r.json["tier"] == "red" for r in hook.delivered), 30, "the red notification")
            (msg,) = [r.json for r in hook.delivered if r.json["tier"] == "red"]
            assert msg["title"] == "【红色预警】抛光车间除尘系统" and "灰斗温度" in msg["text"]
            assert "请立即处置" in msg["text"]
            time.sleep(2)  # further rounds decide nothing new: still one
            assert len([r for r in hook.delivered if r.json["tier"] == "red"]) == 1
            health = rw.health()
            assert health["notifications"].get("sent", 0) >= 1 and "notifications_late" not in health["problems"]
            pub.close()
        finally:
            rw.stop()
        assert WEBHOOK_SECRET not in rw.log.read_text(encoding="utf-8", errors="replace")


def test_notify_test_sends_through_a_channel_and_prints_the_providers_answer(tmp_path, broker, monkeypatch):
    monkeypatch.setenv("RW_TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)
    with FakeWebhook() as hook:
        rw = RiskwatchProcess(tmp_path, broker, notify=notify_block(hook))
        run = subprocess.run([sys.executable, "-m", "riskwatch", "notify-test", "--config", str(rw.config),
                              "--channel", "plant-webhook"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert "accepted" in run.stdout and "王班长" in run.stdout
        (msg,) = [r.json for r in hook.delivered]
        assert msg["title"] == "【测试】riskwatch 通知测试" and msg["to"] == ["王班长"]
        hook.down()
        run = subprocess.run([sys.executable, "-m", "riskwatch", "notify-test", "--config", str(rw.config),
                              "--channel", "plant-webhook"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert run.returncode == 1 and "REFUSED (try again later)" in run.stdout
        bad = subprocess.run([sys.executable, "-m", "riskwatch", "notify-test", "--config", str(rw.config),
                              "--channel", "pager"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert bad.returncode == 1 and "notify.channels has: plant-webhook" in bad.stderr
