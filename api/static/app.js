'use strict';
// riskwatch control-room wall display. Vanilla JS, no build step, no external assets (control rooms are offline).
// Data flow: REST (/api/me, /api/plant, /api/points, /api/alerts/active) for the first paint, then the /ws
// websocket keeps everything live. Anything not confirmed live is shown as stale; never as if it were live.
// Shared helpers ($, h, t, api, toast, the login) are in common.js; the alarm lifecycle (shelved and suppressed
// alarms, reset, out of service, the closed loop) in lifecycle.js. Load order: common.js, lifecycle.js, app.js.

const TIERS = ['normal', 'blue', 'yellow', 'orange', 'red'];
const rank = (tier) => Math.max(0, TIERS.indexOf(tier));
const STALE_AFTER_MS = 10000;      // no websocket message for this long (server heartbeat every 2 s) = stale
const FORCE_RECONNECT_MS = 15000;  // a silent but "open" socket is presumed dead and replaced
const ROLES = ['display', 'operator', 'engineer', 'admin'];
const can = (role) => !!S.me && ROLES.indexOf(S.me.role) >= ROLES.indexOf(role); // at least this role
const MAX_EVENTS = 50;

strings({
  app: '风险监测预警', login_title: '值班登录', sound: '启用声音', live: '实时连接',
  connecting: '正在连接…', silent: '无心跳 {n} 秒', reconnect: '连接断开，{n} 秒后重连', mqtt_down: 'MQTT 断开',
  mqtt_banner: 'MQTT 断开 — 现场数据未接收', degraded: '系统降级：{p}',
  p_broker_down: 'MQTT 断开', p_mqtt_thread_stopped: 'MQTT 接收线程停止', p_store_failing: '数据库写入失败',
  p_alert_book_failing: '报警记录写入失败', p_ingest_behind: '数据接收积压', p_notifications_undelivered: '报警通知发送失败',
  p_notifications_late: '报警通知发送延迟', p_influx_spool_near_full: 'InfluxDB 转发缓存将满',
  p_influx_failing: 'InfluxDB 写入失败', p_uplink_rejected: '省级平台拒收上报数据', p_uplink_behind: '省级平台上报积压',
  stale_title: '数据已过期 — 显示的不是实时数据',
  stale_age: '距上次更新 {n} 秒', stale_never: '尚未收到实时数据',
  red_banner: '红色报警 {n} 条未确认 — 请立即确认处置', active_alerts: '活动报警', events: '报警事件',
  no_alerts: '无活动报警', no_events: '暂无事件', col_tier: '级别', col_area: '区域', col_point: '测点',
  col_reason: '原因', col_value: '数值', col_time: '发生时间', col_state: '状态', col_action: '操作',
  ack: '确认', unacked: '未确认', acked: '已确认', cleared_unacked: '已恢复未确认', acked_by: '{who} 已确认',
  stale_tag: '过期', no_data: '无数据', on: '运行', off: '停止', all_normal: '正常',
  ack_failed: '确认失败', forbidden: '无权限执行此操作', load_failed: '加载失败，正在重试…',
  kind_raised: '触发', kind_tier_up: '升级', kind_tier_down: '降级', kind_cleared: '恢复', kind_acked: '确认',
  kind_latched: '联锁保持', kind_realarm: '再次报警', kind_chattering: '报警抖动', kind_shelved: '搁置',
  kind_unshelved: '解除搁置', kind_out_of_service: '停用维护', kind_in_service: '恢复投用', kind_suppressed: '设计抑制',
  kind_unsuppressed: '解除抑制', kind_step: '处置步骤', kind_overdue: '处置超时',
  sec_dust: '粉尘涉爆', sec_aluminium_casting: '铝加工深井铸造', sec_steel: '钢铁', sec_confined_space: '有限空间',
  sec_ammonia: '涉氨制冷', role_display: '显示屏', role_operator: '操作员', role_engineer: '工程师',
  role_admin: '管理员',
}, {
  app: 'Risk monitoring & early warning', login_title: 'Shift login', sound: 'Enable sound', live: 'Live',
  connecting: 'Connecting…', silent: 'No heartbeat {n} s', reconnect: 'Disconnected, retry in {n} s',
  mqtt_down: 'MQTT down',
  mqtt_banner: 'MQTT broker disconnected — no field data is arriving', degraded: 'System degraded: {p}',
  p_broker_down: 'MQTT down', p_mqtt_thread_stopped: 'MQTT receiver stopped', p_store_failing: 'database writes failing',
  p_alert_book_failing: 'alert log writes failing', p_ingest_behind: 'ingest falling behind',
  p_notifications_undelivered: 'alert notifications failed', p_notifications_late: 'alert notifications delayed',
  p_influx_spool_near_full: 'InfluxDB forwarding spool nearly full', p_influx_failing: 'InfluxDB writes failing',
  p_uplink_rejected: 'provincial platform rejecting uploads', p_uplink_behind: 'provincial uplink falling behind',
  stale_title: 'DATA STALE — this is NOT live data', stale_age: '{n} s since last update',
  stale_never: 'no live data received yet', red_banner: '{n} unacknowledged RED alarm(s) — acknowledge now',
  active_alerts: 'Active alerts', events: 'Alert events', no_alerts: 'No active alerts', no_events: 'No events yet',
  col_tier: 'Tier', col_area: 'Area', col_point: 'Point', col_reason: 'Reason', col_value: 'Value',
  col_time: 'Raised', col_state: 'State', col_action: 'Action', ack: 'Ack', unacked: 'Unacknowledged',
  acked: 'Acknowledged', cleared_unacked: 'Cleared, unacknowledged', acked_by: 'Acked by {who}',
  stale_tag: 'STALE', no_data: 'no data', on: 'On', off: 'Off', all_normal: 'Normal',
  ack_failed: 'Acknowledge failed', forbidden: 'Not allowed for your role', load_failed: 'Load failed, retrying…',
  kind_raised: 'Raised', kind_tier_up: 'Escalated', kind_tier_down: 'De-escalated', kind_cleared: 'Cleared',
  kind_acked: 'Acknowledged', kind_latched: 'Latched', kind_realarm: 'Re-alarmed', kind_chattering: 'Chattering',
  kind_shelved: 'Shelved', kind_unshelved: 'Unshelved', kind_out_of_service: 'Out of service',
  kind_in_service: 'Back in service', kind_suppressed: 'Suppressed', kind_unsuppressed: 'Unsuppressed',
  kind_step: 'Handling step', kind_overdue: 'Step overdue',
  sec_dust: 'Dust explosion', sec_aluminium_casting: 'Aluminium casting', sec_steel: 'Steel',
  sec_confined_space: 'Confined space', sec_ammonia: 'Ammonia refrigeration',
  role_display: 'Display', role_operator: 'Operator', role_engineer: 'Engineer', role_admin: 'Admin',
});

// ---- state (S itself, with the token and the language, is common.js's) ----
Object.assign(S, {
  gen: 0,               // bumped on login/logout so callbacks of an old session are ignored
  me: null, plant: null, points: {}, subjects: {}, areas: {},
  values: {},           // pointId -> {ts, value}
  alerts: {},           // alertId -> Alert (active or latched, or cleared but not yet acknowledged)
  known: {},            // alertId -> {point, area}: a closed loop outlives its alert on the list
  events: [],           // newest first, at most MAX_EVENTS
  lastSeq: null,        // highest event-log seq seen; sent as `since` on reconnect
  ws: null, live: false, replaying: false, lastMsgAt: 0, backoff: 1, retryAt: 0, retryTimer: null,
  broker: true, clockOffset: 0, // server clock minus ours, seconds (from health messages)
  tileEls: {}, dirty: { alerts: true, events: true, loops: true }, prevRed: 0,
});

const serverNow = () => Date.now() / 1000 + S.clockOffset;
const isAcked = (al) => al.acked_at != null || al.acked_by != null;
// shelved, out of service or suppressed by design: shown apart, never counted (when its suppression ends, the
// server clears the mark, a cleared alarm's too, and pushes the event)
const isLive = (al) => !al.suppressed;

function fmtNum(v) {
  if (v == null || !isFinite(v)) return '—';
  const a = Math.abs(v);
  return v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : 2);
}
function fmtValue(pointId, v) {
  const p = S.points[pointId];
  if (p && !p.unit && (v === 0 || v === 1)) return t(v ? 'on' : 'off'); // 0/1 run-state points
  return fmtNum(v) + (p && p.unit ? ' ' + p.unit : '');
}
function fmtTime(ts, withDate) {
  if (ts == null) return '—';
  const d = new Date(ts * 1000), p2 = (n) => String(n).padStart(2, '0');
  const time = `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
  const today = new Date(serverNow() * 1000).toDateString() === d.toDateString();
  return withDate || !today ? `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${time}` : time;
}

// ---- sound (Web Audio; browsers need one user gesture before audio may start) ----
const Sound = {
  ctx: null,
  unlock() {
    try {
      if (!this.ctx) this.ctx = new (window.AudioContext || window.webkitAudioContext)();
      if (this.ctx.state !== 'running') this.ctx.resume().then(updateSoundButton, () => {});
    } catch (e) { /* no audio device: the visual alarm still works */ }
    updateSoundButton();
  },
  ready() { return !!this.ctx && this.ctx.state === 'running'; },
  tone(freq, at, dur) {
    const c = this.ctx, osc = c.createOscillator(), g = c.createGain(), t0 = c.currentTime + at;
    osc.type = 'square'; osc.frequency.value = freq;
    g.gain.setValueAtTime(0, t0); g.gain.linearRampToValueAtTime(0.25, t0 + 0.01);
    g.gain.setValueAtTime(0.25, t0 + dur - 0.02); g.gain.linearRampToValueAtTime(0, t0 + dur);
    osc.connect(g).connect(c.destination); osc.start(t0); osc.stop(t0 + dur + 0.01);
  },
  red() { if (this.ready()) [0, 0.3, 0.6].forEach((at, i) => this.tone(i % 2 ? 660 : 990, at, 0.25)); },
  orange() { if (this.ready()) this.tone(740, 0, 0.45); },
};
function updateSoundButton() {
  $('#sound-btn').hidden = Sound.ready();
  document.body.dataset.sound = Sound.ready() ? 'on' : 'off';
}
const unackedRed = () => Object.values(S.alerts).filter((al) => isLive(al) && al.tier === 'red' && !isAcked(al));

// ---- i18n of the static page ----
function applyLang() {
  translatePage();
  document.title = (S.plant ? nm(S.plant) + ' · ' : '') + t('app');
  $('#plant-name').textContent = S.plant ? nm(S.plant) : '—';
  S.dirty.alerts = S.dirty.events = S.dirty.loops = true;
  if (S.plant) buildTiles();
  render();
}
function toggleLang() {
  switchLang();
  applyLang();
}

// ---- login / session ----
function logout(invalid) {
  S.gen++;
  if (S.ws) { S.ws.onclose = null; S.ws.close(); S.ws = null; }
  clearTimeout(S.retryTimer);
  forgetToken();
  sessionStorage.removeItem('riskwatch.events');
  Object.assign(S, { me: null, live: false, alerts: {}, known: {}, events: [], values: {}, lastSeq: null, lastMsgAt: 0,
    suppressions: [], loops: [] });
  S.dirty.alerts = S.dirty.events = S.dirty.loops = true;
  closeDialog();
  showLogin(invalid ? 'bad_token' : '');
  render();
}

async function start() {
  const gen = ++S.gen;
  $('#login').hidden = true;
  try {
    const [me, plant, points, alerts] = await Promise.all(
      ['/api/me', '/api/plant', '/api/points', '/api/alerts/active'].map((p) => api(p)));
    if (gen !== S.gen) return;
    S.me = me; S.plant = plant;
    S.points = Object.fromEntries(plant.points.map((p) => [p.id, p]));
    S.subjects = Object.fromEntries(plant.subjects.map((x) => [x.id, x])); // gateways, composite rules
    S.areas = Object.fromEntries(plant.areas.map((a) => [a.id, a]));
    for (const p of points) if (p.latest) S.values[p.id] = p.latest;
    S.alerts = {};
    alerts.forEach(upsertAlert);
    restoreEvents();
    refreshSoon('loops');
  } catch (e) {
    if (gen !== S.gen) return;
    if (e instanceof AuthError) return logout(true);
    toast(t('load_failed'));
    S.retryTimer = setTimeout(() => { if (gen === S.gen) start(); }, 3000);
    return;
  }
  applyLang();
  connect(gen);
}

// A reload in the same tab resumes the event log from the last seq (the server replays what we missed).
function restoreEvents() {
  if (S.events.length || S.lastSeq != null) return;
  try {
    const saved = JSON.parse(sessionStorage.getItem('riskwatch.events') || 'null');
    if (saved && Array.isArray(saved.events)) { S.events = saved.events; S.lastSeq = saved.seq ?? null; }
  } catch (e) { /* ignore a corrupt entry */ }
  S.events.forEach(remember);
  S.dirty.events = true;
}

// ---- websocket ----
function connect(gen) {
  if (gen !== S.gen) return;
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
  S.ws = ws; S.live = false; S.replaying = true;
  ws.onopen = () => ws.send(JSON.stringify({ token: S.token, since: S.lastSeq }));
  ws.onmessage = (m) => {
    if (ws !== S.ws) return;
    S.lastMsgAt = Date.now();
    let msg;
    try { msg = JSON.parse(m.data); } catch (e) { return; }
    onMessage(msg);
  };
  ws.onclose = (e) => {
    if (ws !== S.ws) return;
    S.ws = null; S.live = false;
    if (e.code === 4401) return logout(true);
    scheduleReconnect(gen);
    render();
  };
}

function scheduleReconnect(gen) {
  const delay = S.backoff;                 // 1, 2, 4, 8, 10, 10, ... seconds
  S.backoff = Math.min(S.backoff * 2, 10);
  S.retryAt = Date.now() + delay * 1000;
  clearTimeout(S.retryTimer);
  S.retryTimer = setTimeout(() => connect(gen), delay * 1000);
}

function onMessage(msg) {
  if (msg.type !== 'hello' && typeof msg.seq === 'number') S.lastSeq = Math.max(S.lastSeq ?? 0, msg.seq);
  switch (msg.type) {
    case 'hello':
      S.live = true; S.backoff = 1;
      if (S.lastSeq != null && msg.seq < S.lastSeq) { S.events = []; S.lastSeq = null; S.dirty.events = true; } // log was reset
      if (msg.user) S.me = msg.user;
      if (S.events.length === 0 && msg.seq > 0) loadRecentEvents(msg.seq);
      break;
    case 'alert_event':
      applyEvent(msg.event, msg.seq, !S.replaying);
      break;
    case 'snapshot':
      S.replaying = false;
      S.alerts = {};
      (msg.alerts || []).forEach(upsertAlert);
      Object.assign(S.values, msg.values || {});
      setSuppressions(msg.suppressions || []);
      refreshSoon('loops');  // steps recorded while we were away come with no event we replay for the panel
      S.dirty.alerts = true;
      break;
    case 'suppressions':
      setSuppressions(msg.suppressions || []);
      break;
    case 'values':
      Object.assign(S.values, msg.values || {});
      break;
    case 'health':
      S.broker = msg.broker_connected !== false;
      S.problems = Array.isArray(msg.problems) ? msg.problems : [];
      if (typeof msg.ts === 'number') S.clockOffset = msg.ts - Date.now() / 1000;
      break;
  }
  render();
}

// A fresh wall starts with the recent event log, not an empty one (the socket only replays what it missed).
async function loadRecentEvents(seq) {
  try {
    const recent = await api('/api/alerts/events?since=' + Math.max(0, seq - MAX_EVENTS) + '&limit=' + MAX_EVENTS);
    recent.forEach((ev) => applyEvent({ ...ev, alert: null }, ev.seq, false));
    render();
  } catch (e) { /* the live stream still works; the log fills as events arrive */ }
}

// The server's rule for the list: active or latched, or cleared and not yet acknowledged (an alarm that was
// suppressed all its life needs nobody's acknowledgement).
function upsertAlert(al) {
  remember({ alert_id: al.id, point: al.point, area: al.area });
  if (al.state === 'cleared' && (isAcked(al) || al.shown === false)) delete S.alerts[al.id];
  else S.alerts[al.id] = al;
  S.dirty.alerts = true;
}
function remember(ev) {
  if (ev && ev.alert_id != null && ev.point) S.known[ev.alert_id] = { point: ev.point, area: ev.area };
}

function applyEvent(ev, seq, live) {
  if (!ev) return;
  if (ev.alert) upsertAlert(ev.alert);
  remember(ev);
  lifecycleEvent(ev);
  if (S.events.some((e) => e.seq === seq)) return;  // replay may overlap what we already have
  S.events.push({ ...ev, seq: ev.seq ?? seq });
  S.events.sort((a, b) => b.seq - a.seq);
  S.events.length = Math.min(S.events.length, MAX_EVENTS);
  S.dirty.events = true;
  sessionStorage.setItem('riskwatch.events', JSON.stringify({ seq: S.lastSeq, events: S.events }));
  // Orange: one beep when it arrives (red repeats on its own timer, see the bottom of this file)
  if (live && ev.tier === 'orange' && (ev.kind === 'raised' || ev.kind === 'tier_up')
      && !(ev.alert && (isAcked(ev.alert) || !isLive(ev.alert)))) {
    Sound.orange();
  }
}

async function ack(id, btn) {
  btn.disabled = true;
  try {
    upsertAlert(await api(`/api/alerts/${id}/ack`, { method: 'POST', body: JSON.stringify({ note: '' }) }));
  } catch (e) {
    if (e instanceof AuthError) return logout(true);
    toast(e.status === 403 ? t('forbidden') : t('ack_failed'));
    btn.disabled = false;
  }
  render();
}

// ---- rendering ----
function buildTiles() {
  const box = $('#tiles');
  box.replaceChildren();
  S.tileEls = {};
  const maintain = can('engineer');  // an engineer opens a point to take it out of service or return it
  for (const a of S.plant.areas) {
    const pts = S.plant.points.filter((p) => p.area === a.id);
    const tile = h('section', { class: 'tile', 'data-testid': 'area-tile-' + a.id, 'data-tier': 'normal' },
      h('header', { class: 'tile-head' }, h('h3', { class: 'area-name', title: nm(a) }, nm(a))),
      h('div', { class: 'tile-sub' }, h('div', { class: 'counts' }), h('span', { class: 'sector' }, t('sec_' + a.sector))),
      h('ul', { class: 'points' }, pts.map((p) => h('li', {
        class: 'pt' + (maintain ? ' pt-maintain' : ''), 'data-point': p.id, 'data-tier': 'normal',
        'data-testid': 'point-' + p.id, 'data-oos': 'false',
        ...(maintain ? { role: 'button', tabindex: '0', title: t('maintain_hint'), onclick: () => openPointDialog(p.id),
          onkeydown: (e) => { if (e.key === 'Enter') openPointDialog(p.id); } } : {}),
      },
      h('span', { class: 'pt-name', title: nm(p) }, nm(p)),
      h('span', { class: 'pt-val', 'data-testid': 'value-' + p.id, 'data-stale': 'false' })))));
    S.tileEls[a.id] = tile;
    box.append(tile);
  }
}

// Tiles count live alarms only; a point out of service says so, so that its silence is never read as healthy.
function updateTiles() {
  const now = serverNow(), byPoint = {}, byArea = {};
  for (const al of Object.values(S.alerts)) {
    if (al.state !== 'active' || !isLive(al)) continue;
    if (rank(al.tier) > rank(byPoint[al.point])) byPoint[al.point] = al.tier;
    const c = (byArea[al.area] ??= { counts: {}, unacked: false });
    c.counts[al.tier] = (c.counts[al.tier] || 0) + 1;
    if (!isAcked(al)) c.unacked = true;
  }
  for (const [areaId, tile] of Object.entries(S.tileEls)) {
    const info = byArea[areaId] || { counts: {}, unacked: false };
    const top = ['red', 'orange', 'yellow', 'blue'].find((tr) => info.counts[tr]) || 'normal';
    tile.dataset.tier = top;
    tile.classList.toggle('unacked', info.unacked);
    let oos = 0;
    for (const li of tile.querySelectorAll('.pt')) {
      const p = S.points[li.dataset.point], v = S.values[p.id], el = li.querySelector('.pt-val');
      const stale = !v || now - v.ts > (p.stale_factor || 3) * (p.interval_s || 1) + 2;
      const off = !!outOfService(p.id);
      oos += off;
      li.dataset.tier = byPoint[p.id] || 'normal';
      li.dataset.oos = String(off);
      el.dataset.stale = String(stale);
      el.replaceChildren(h('span', { class: 'num' }, v ? fmtValue(p.id, v.value) : '—'),
        ...(off ? [h('span', { class: 'tag tag-oos', 'data-testid': 'oos-' + p.id }, t('oos_tag'))]
          : stale ? [h('span', { class: 'tag' }, v ? t('stale_tag') : t('no_data'))] : []));
      el.title = v ? fmtTime(v.ts, true) : '';
    }
    tile.dataset.oos = String(oos > 0);
    const counts = ['red', 'orange', 'yellow', 'blue'].filter((tr) => info.counts[tr])
      .map((tr) => h('span', { class: 'count-chip', 'data-tier': tr }, t('tier_' + tr) + ' ' + info.counts[tr]));
    if (oos) counts.push(h('span', { class: 'count-chip', 'data-tier': 'oos' }, t('oos_count', { n: oos })));
    tile.querySelector('.counts').replaceChildren(...(counts.length ? counts : [h('span', { class: 'ok' }, t('all_normal'))]));
  }
}

function alertState(al) {
  if (al.state === 'latched') return t('latched');
  if (al.state === 'cleared') return t('cleared_unacked');
  return isAcked(al) ? t('acked_by', { who: al.acked_by || '' }) : t('unacked');
}
const byTierThenNewest = (a, b) => rank(b.tier) - rank(a.tier) || b.raised_at - a.raised_at;
const reasonOf = (x) => (S.lang === 'en' ? x.reason_en : x.reason_zh) || x.reason_zh || '';

// The live list: suppressed alarms are listed apart (lifecycle.js, renderSuppressed).
function renderAlerts() {
  const list = Object.values(S.alerts).filter(isLive).sort(byTierThenNewest);
  const canAck = can('operator');
  document.body.classList.toggle('no-ack', !canAck);
  $('#alert-body').replaceChildren(...list.map((al) => {
    const acked = isAcked(al);
    return h('tr', {
      'data-testid': 'alert-row-' + al.id, 'data-tier': al.tier, 'data-acked': String(acked), 'data-state': al.state,
      'data-chattering': String(!!al.chattering), class: [acked ? 'acked' : 'unacked', al.state].join(' '),
    },
    h('td', {}, chip(al.tier)),
    h('td', {}, nm(S.areas[al.area]) || al.area),
    h('td', {}, subjectName(al.point)),
    h('td', { class: 'reason' }, reasonOf(al)),
    h('td', { class: 'num' }, al.value == null ? '—' : fmtValue(al.point, al.value)),
    h('td', { class: 'num' }, fmtTime(al.raised_at)),
    h('td', { class: 'state', 'data-testid': 'state-' + al.id }, alertState(al),
      al.chattering ? h('span', { class: 'badge badge-chatter', 'data-testid': 'chatter-' + al.id, title: t('chattering_hint') },
        t('chattering')) : null),
    h('td', { class: 'col-ack' }, h('div', { class: 'actions' },
      canAck && !acked
        ? h('button', { class: 'btn btn-ack', 'data-testid': 'ack-' + al.id, onclick: (e) => ack(al.id, e.currentTarget) }, t('ack'))
        : null,
      lifecycleButtons(al))));
  }));
  $('#no-alerts').hidden = list.length > 0;
  $('#alert-count').textContent = list.length ? String(list.length) : '';
  renderSuppressed();
}

// what an alert is about: a point, or a gateway / composite rule the plant lists as a subject
function subjectName(id) {
  return nm(S.points[id]) || nm(S.subjects[id]) || id;
}

// what each event adds after its subject: who acknowledged, the reason (shelved, step, overdue...) or the value
const TOLD_BY_REASON = new Set(['latched', 'chattering', 'shelved', 'unshelved', 'out_of_service', 'in_service',
  'suppressed', 'unsuppressed', 'step', 'overdue']);
function eventDetail(ev) {
  if (ev.kind === 'acked') return ev.actor || '';
  if (TOLD_BY_REASON.has(ev.kind) || (ev.kind === 'cleared' && ev.actor)) return reasonOf(ev);
  return ev.value != null ? fmtValue(ev.point, ev.value) : '';
}

function renderEvents() {
  $('#events').replaceChildren(...S.events.map((ev) => {
    const detail = eventDetail(ev), text = `${nm(S.areas[ev.area]) || ev.area} · ${subjectName(ev.point)}`;
    return h('li', { class: 'ev', 'data-kind': ev.kind, 'data-tier': ev.tier },
      h('span', { class: 'ev-time num' }, fmtTime(ev.ts)),
      chip(ev.tier),
      h('span', { class: 'ev-kind' }, t('kind_' + ev.kind)),
      h('span', { class: 'ev-text', title: detail }, text + (detail ? ` — ${detail}` : '')));
  }));
  $('#no-events').hidden = S.events.length > 0;
}

// Staleness, banners and header; cheap enough to run on every message and every tick.
function renderStatus() {
  const loggedIn = !!S.token && $('#login').hidden;
  const open = !!S.ws && S.ws.readyState === WebSocket.OPEN;
  const silentMs = S.lastMsgAt ? Date.now() - S.lastMsgAt : Infinity;
  const stale = !open || !S.live || silentMs > STALE_AFTER_MS;
  const b = document.body;
  b.dataset.connected = String(open && S.live);
  b.dataset.stale = String(loggedIn && stale);
  $('#stale-banner').hidden = !(loggedIn && stale);
  $('#stale-age').textContent = S.lastMsgAt ? t('stale_age', { n: Math.floor(silentMs / 1000) }) : t('stale_never');
  const conn = $('#conn');
  conn.textContent = open && S.live && !stale ? t('live')
    : open && S.live ? t('silent', { n: Math.floor(silentMs / 1000) })
    : !S.ws && S.retryAt ? t('reconnect', { n: Math.max(0, Math.ceil((S.retryAt - Date.now()) / 1000)) }) : t('connecting');
  conn.className = 'pill ' + (open && S.live && !stale ? 'pill-ok' : 'pill-bad');
  const brokerDown = loggedIn && !S.broker;
  const others = loggedIn ? (S.problems || []).filter((p) => p !== 'broker_down') : [];
  $('#broker-pill').hidden = !brokerDown;
  $('#broker-banner').hidden = !brokerDown && others.length === 0;
  $('#broker-banner .banner-text').textContent = brokerDown ? t('mqtt_banner')
    : t('degraded', { p: others.map((p) => t('p_' + p)).join(S.lang === 'en' ? ', ' : '，') });
  $('#user').textContent = S.me ? `${S.me.name} · ${t('role_' + S.me.role)}` : '';
  $('#quality-link').hidden = !(loggedIn && can('engineer'));
  const reds = loggedIn ? unackedRed().length : 0;
  b.dataset.redAlarm = String(reds > 0);
  $('#red-banner').hidden = reds === 0;
  $('#red-text').textContent = t('red_banner', { n: reds });
  if (reds > S.prevRed) Sound.red();  // a new red alarm sounds at once, then every 2 s (alarmTick)
  S.prevRed = reds;
  updateSoundButton();
}

// Batched with a short timer rather than requestAnimationFrame, which stops in hidden tabs.
let frame = 0;
function render() {
  if (frame) return;
  frame = setTimeout(() => {
    frame = 0;
    if (S.dirty.alerts) { renderAlerts(); S.dirty.alerts = false; }
    if (S.dirty.events) { renderEvents(); S.dirty.events = false; }
    if (S.dirty.loops) { renderLoops(); S.dirty.loops = false; }
    updateTiles();
    updateCountdowns();
    renderStatus();
  }, 30);
}

function tick() {
  $('#clock').textContent = fmtTime(serverNow(), true);
  // A socket that is open but silent past the heartbeat budget is half-dead: drop it and reconnect.
  if (S.ws && S.lastMsgAt && Date.now() - S.lastMsgAt > FORCE_RECONNECT_MS && S.ws.readyState === WebSocket.OPEN) {
    const ws = S.ws;
    ws.onclose = null; ws.close(); S.ws = null; S.live = false;
    scheduleReconnect(S.gen);
  }
  render();
}

// ---- wiring ----
$('#login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const token = $('#login-token').value.trim();
  if (!token) return;
  saveToken(token);
  Sound.unlock(); // the login click is a user gesture
  start();
});
document.querySelectorAll('.lang-btn').forEach((b) => b.addEventListener('click', toggleLang));
$('#logout-btn').addEventListener('click', () => logout(false));
$('#sound-btn').addEventListener('click', () => Sound.unlock());
// Any gesture on the page unlocks audio (needed once per page load).
['pointerdown', 'keydown'].forEach((ev) => document.addEventListener(ev, () => { if (!Sound.ready()) Sound.unlock(); }));

Sound.unlock(); // succeeds without a gesture only where the browser's autoplay policy allows it
setInterval(tick, 500);
setInterval(() => { if (unackedRed().length) Sound.red(); }, 2000);
// Suppressions that expire by time and loops that change without an event reach us only through these.
setInterval(() => { if (S.me) { refreshSoon('suppressions'); refreshSoon('loops'); } }, 30000);
window.riskwatch = { state: S, sound: Sound }; // for debugging and automated tests

applyLang();
if (S.token) start(); else showLogin('');
tick();
