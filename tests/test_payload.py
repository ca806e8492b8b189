"""What the gateways send and what the decoder makes of it: readings accepted, the rest rejected with a reason.

A bad reading costs that reading alone; the good ones beside it in a gateway batch still go through.
"""
from __future__ import annotations

import json

import pytest

from config.load import DEMO, load_plant
from config.model import IngestConfig
from ingest.payload import (Decoder, Reading, Reason, encode_batch, encode_reading, gateway_topic, parse_ts,
                            point_topic)

T0 = 1_732_300_000.0  # 2024-11-22 18:26:40 UTC = 2024-11-23 02:26:40 in Beijing
PLANT = load_plant(DEMO)
HOPPER = "dust1.hopper_t"  # -40..400 degC
FAN_ON = "dust1.fan_on"  # a 0/1 status point
GW = "rw/v1/demo/gateway/gw-dust1"


def decoder(**rules) -> Decoder:
    return Decoder(PLANT.point_map(), IngestConfig(**rules), "rw/v1", "demo")


def decode(topic: str, payload: bytes | str | dict, now: float = T0, **rules):
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    out, rejects = [], []
    decoder(**rules).decode(topic, payload, now, out, rejects)
    return out, rejects


def at_point(point: str) -> str:
    return point_topic("rw/v1", "demo", point)


def accepted(payload, point: str = HOPPER, **kw) -> list[Reading]:
    out, rejects = decode(at_point(point), payload, **kw)
    assert rejects == [], rejects
    return out


def rejected(payload, point: str = HOPPER, topic: str | None = None, **kw):
    out, rejects = decode(topic or at_point(point), payload, **kw)
    assert out == [] and len(rejects) == 1, (out, rejects)
    return rejects[0]


# --- good readings ------------------------------------------------------------------------------------------

def test_a_hopper_temperature_reading_is_accepted_with_millisecond_time():
    assert accepted({"ts": T0 + 0.5, "value": 41.25}) == [Reading(HOPPER, int(T0 * 1000) + 500, 41.25)]


def test_the_simulators_encoders_produce_what_the_decoder_accepts():
    assert accepted(encode_reading(T0, 23.4)) == [Reading(HOPPER, int(T0 * 1000), 23.4)]
    out, rejects = decode(gateway_topic("rw/v1", "demo", "gw1"), encode_batch([(HOPPER, T0, 40.0),
                                                                               ("sump1.o2", T0 + 1, 20.9)]))
    assert rejects == [] and [(r.point, r.value) for r in out] == [(HOPPER, 40.0), ("sump1.o2", 20.9)]


def test_an_integer_value_is_accepted_as_a_number():
    assert accepted({"ts": T0, "value": 41})[0].value == 41.0


@pytest.mark.parametrize("raw, value", [(True, 1.0), (False, 0.0)])
def test_a_fan_run_status_sent_as_a_boolean_is_read_as_0_or_1(raw, value):
    assert accepted({"ts": T0, "value": raw}, point=FAN_ON) == [Reading(FAN_ON, int(T0 * 1000), value)]


def test_iso_8601_time_with_a_zone_is_accepted():
    beijing = accepted({"ts": "2024-11-23T02:26:40+08:00", "value": 40.0})
    utc = accepted({"ts": "2024-11-22T18:26:40Z", "value": 40.0})
    assert beijing[0].ts_ms == utc[0].ts_ms == int(T0 * 1000)


def test_readings_at_the_edges_of_the_physical_range_and_time_window_are_accepted():
    assert accepted({"ts": T0, "value": -40}) and accepted({"ts": T0, "value": 400})
    assert accepted({"ts": T0 + 300, "value": 40.0})  # max_future_s = 300
    assert accepted({"ts": T0 - 7 * 86400, "value": 40.0})  # max_past_s = 7 days


def test_a_message_exactly_at_the_size_limit_is_accepted():
    payload = json.dumps({"ts": T0, "value": 40.0}).encode()
    assert accepted(payload, max_message_bytes=len(payload))


# --- rejections, one reason each --------------------------------------------------------------------------------

def test_an_oversized_message_is_rejected_and_only_its_first_64_kib_are_kept():
    payload = json.dumps({"ts": T0, "value": 40.0, "pad": "x" * 100_000}).encode()
    r = rejected(payload, max_message_bytes=4096)
    assert r.reason == Reason.OVERSIZED and str(len(payload)) in r.detail
    assert r.payload == payload[:65_536]


def test_two_oversized_messages_with_the_same_head_are_two_rejections():
    head = b'{"ts": 1, "value": 40.0, "pad": "' + b"x" * 70_000
    first, second = rejected(head + b'a"}', max_message_bytes=4096), rejected(head + b'b"}', max_message_bytes=4096)
    assert first.payload == second.payload and first.digest != second.digest


@pytest.mark.parametrize("payload", [b"{not json", b'{"ts": 1, "value": }', b"", b"\xff\xfe\xfa garbage"])
def test_malformed_json_is_rejected(payload):
    r = rejected(payload)
    assert r.reason == Reason.MALFORMED_JSON and r.payload == payload


@pytest.mark.parametrize("topic", ["rw/v1/other-site/point/dust1.hopper_t", "rw/v2/demo/point/dust1.hopper_t",
                                   "rw/v1/demo/sensor/dust1.hopper_t", "rw/v1/demo/point/", "rw/v1/demo/point",
                                   "rw/v1/demo/point/dust1/hopper_t", "rw/v1/demo/gateway/"])
def test_a_message_on_a_topic_outside_the_layout_is_rejected(topic):
    r = rejected({"ts": T0, "value": 40.0}, topic=topic)
    assert r.reason == Reason.BAD_TOPIC and r.topic == topic


@pytest.mark.parametrize("topic, payload", [
    (at_point(HOPPER), [40.0]),
    (at_point(HOPPER), 40.0),
    (GW, {"ts": T0}),
    (GW, {"readings": {"point": HOPPER, "value": 40.0}}),
    (GW, {"readings": [[HOPPER, T0, 40.0]]}),
    (GW, {"readings": [{"value": 40.0}]}),
    (GW, {"readings": [{"point": 7, "value": 40.0}]}),
])
def test_a_payload_of_the_wrong_shape_is_rejected(topic, payload):
    out, rejects = decode(topic, json.dumps(payload))
    assert out == [] and [r.reason for r in rejects] == [Reason.BAD_SHAPE]


def test_a_reading_for_a_point_not_in_the_plant_is_rejected_naming_the_point():
    r = rejected({"ts": T0, "value": 1.0}, point="dust1.hopper_t2")
    assert r.reason == Reason.UNKNOWN_POINT and r.point == "dust1.hopper_t2" and "dust1.hopper_t2" in r.detail


@pytest.mark.parametrize("value", ["41.2", "hot", None, [41.2], {"v": 41.2}])
def test_a_value_that_is_not_a_number_is_rejected_as_the_wrong_type(value):
    r = rejected({"ts": T0, "value": value})
    assert r.reason == Reason.WRONG_TYPE and r.point == HOPPER


def test_a_missing_value_is_rejected_as_the_wrong_type():
    assert rejected({"ts": T0}).reason == Reason.WRONG_TYPE


def test_a_status_sent_as_the_string_true_is_rejected():
    assert rejected({"ts": T0, "value": "true"}, point=FAN_ON).reason == Reason.WRONG_TYPE


@pytest.mark.parametrize("ts", [None, "yesterday", True, [T0], "2024-11-22 18:26:40", "2024-11-22T18:26:40"])
def test_a_time_that_is_not_epoch_seconds_or_zoned_iso_8601_is_rejected_as_the_wrong_type(ts):
    r = rejected({"ts": ts, "value": 40.0})
    assert r.reason == Reason.WRONG_TYPE and "ts" in r.detail


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_value_that_is_not_finite_is_rejected(literal):
    r = rejected(f'{{"ts": {T0}, "value": {literal}}}')
    assert r.reason == Reason.NOT_FINITE


@pytest.mark.parametrize("point, value", [(HOPPER, 9999.0), (HOPPER, -40.5), (FAN_ON, 2), (FAN_ON, -1)])
def test_a_value_outside_the_sensors_physical_range_is_rejected(point, value):
    r = rejected({"ts": T0, "value": value}, point=point)
    assert r.reason == Reason.OUT_OF_RANGE and "physical range" in r.detail


def test_a_reading_stamped_too_far_in_the_future_is_rejected():
    r = rejected({"ts": T0 + 301, "value": 40.0})
    assert r.reason == Reason.TS_FUTURE and "301" in r.detail


def test_a_reading_stamped_too_far_in_the_past_is_rejected():
    assert rejected({"ts": T0 - 7 * 86400 - 1, "value": 40.0}).reason == Reason.TS_PAST


def test_a_gateway_with_its_clock_on_local_time_but_no_zone_is_rejected_not_shifted_eight_hours():
    assert rejected({"ts": "2024-11-23T02:26:40", "value": 40.0}).reason == Reason.WRONG_TYPE


def test_the_time_window_follows_the_configured_rules():
    assert rejected({"ts": T0 + 11, "value": 40.0}, max_future_s=10).reason == Reason.TS_FUTURE
    assert rejected({"ts": T0 - 61, "value": 40.0}, max_past_s=60).reason == Reason.TS_PAST


@pytest.mark.parametrize("huge", ["1" + "0" * 400, "-" + "1" + "0" * 400])
def test_an_absurdly_large_integer_value_is_rejected_not_a_decoder_crash(huge):
    r = rejected(f'{{"ts": {T0}, "value": {huge}}}')
    assert r.reason in (Reason.OUT_OF_RANGE, Reason.NOT_FINITE)


def test_an_absurdly_large_integer_time_is_rejected_not_a_decoder_crash():
    r = rejected(f'{{"ts": 1{"0" * 400}, "value": 40.0}}')
    assert r.reason in (Reason.WRONG_TYPE, Reason.TS_FUTURE)


# --- gateway batches ---------------------------------------------------------------------------------------

def test_a_gateway_batch_keeps_its_good_readings_and_rejects_only_the_bad_ones():
    batch = {"ts": T0, "readings": [
        {"point": HOPPER, "ts": T0 - 2, "value": 41.0},
        {"point": HOPPER, "ts": T0 - 1, "value": "41.5"},  # wrong type
        {"point": "no.such.point", "value": 1.0},  # unknown point
        {"point": "sump1.o2", "ts": T0 - 1, "value": 20.9},
        {"point": "sump1.o2", "value": float("nan")},  # not finite
        {"point": "sump1.h2s", "value": 501.0},  # out of range
        {"point": "sump1.h2s", "ts": T0 + 3600, "value": 0.2},  # future
        "sump1.lel=0",  # bad shape
        {"point": FAN_ON, "value": True},
    ]}
    out, rejects = decode(GW, json.dumps(batch))
    assert [(r.point, r.ts_ms, r.value) for r in out] == [
        (HOPPER, int((T0 - 2) * 1000), 41.0), ("sump1.o2", int((T0 - 1) * 1000), 20.9),
        (FAN_ON, int(T0 * 1000), 1.0)]
    assert [(r.reason, r.point) for r in rejects] == [
        (Reason.WRONG_TYPE, HOPPER), (Reason.UNKNOWN_POINT, "no.such.point"), (Reason.NOT_FINITE, "sump1.o2"),
        (Reason.OUT_OF_RANGE, "sump1.h2s"), (Reason.TS_FUTURE, "sump1.h2s"), (Reason.BAD_SHAPE, None)]
    assert all(r.topic == GW for r in rejects)
    assert json.loads(rejects[0].payload) == batch["readings"][1]  # each rejection keeps its own reading


def test_a_reading_in_a_batch_without_its_own_time_takes_the_batchs_time():
    out, _ = decode(GW, {"ts": "2024-11-23T02:26:40+08:00", "readings": [
        {"point": HOPPER, "value": 40.0}, {"point": "sump1.o2", "ts": T0 - 5, "value": 20.9}]})
    assert [(r.point, r.ts_ms) for r in out] == [(HOPPER, int(T0 * 1000)), ("sump1.o2", int((T0 - 5) * 1000))]


def test_a_reading_without_a_time_in_a_batch_without_one_is_rejected():
    out, rejects = decode(GW, {"readings": [{"point": HOPPER, "value": 40.0}]})
    assert out == [] and [r.reason for r in rejects] == [Reason.WRONG_TYPE]


def test_one_absurd_number_in_a_gateway_batch_costs_only_that_reading():
    payload = ('{"readings": [{"point": "dust1.hopper_t", "ts": %s, "value": 1%s},'
               ' {"point": "sump1.o2", "ts": %s, "value": 20.9}]}' % (T0, "0" * 400, T0))
    out, rejects = decode(GW, payload)
    assert [(r.point, r.value) for r in out] == [("sump1.o2", 20.9)]
    assert [r.point for r in rejects] == [HOPPER]


def test_an_empty_gateway_batch_is_nothing_at_all():
    assert decode(GW, {"ts": T0, "readings": []}) == ([], [])


# --- parse_ts on its own ------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, want", [(T0, T0), (int(T0), T0), ("2024-11-22T18:26:40.250+00:00", T0 + 0.25),
                                       ("2024-11-22T18:26:40Z", T0), (float("nan"), None), (float("inf"), None),
                                       (False, None), ("2024-11-22T18:26:40", None), ("", None), (None, None)])
def test_parse_ts_reads_epoch_seconds_and_zoned_iso_times_only(raw, want):
    assert parse_ts(raw) == want
