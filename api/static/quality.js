'use strict';
// riskwatch alarm-system quality report (ISA-18.2 / EEMUA 191 yardsticks). Vanilla JS, no external assets.
// The token and language are the wall display's (common.js, loaded first): one login serves both pages.
// Times are shown in the plant's UTC offset (the report's `tz`), whatever the browser's zone.

const TIERS = ['red', 'orange', 'yellow', 'blue'];
const DAY = 86400;

strings({
  title: '报警系统性能报告', login_title: '工程师登录', to_wall: '监控大屏', loading: '正在加载…',
  load_failed: '加载失败：{e}', forbidden: '需要工程师及以上权限才能查看报警系统性能报告',
  today: '今天', yesterday: '昨天', week: '最近7天', custom: '自定义', from: '开始', to: '结束', apply: '查询',
  area: '区域', all_areas: '全部区域', range: '{a} 至 {b}（UTC{tz}）', bad_range: '开始时间须早于结束时间',
  consoles_h: '各控制台概况', floods_h: '报警泛滥时段', top_h: '最频繁报警点（前10）', response_h: '确认时间与恢复时间',
  chatter_h: '振荡报警', fleeting_h: '瞬时报警', stale_h: '长期报警（持续超过24小时）', shifts_h: '按日期和班次',
  quiet_hidden: '另有 {n} 个班次无报警，未列出。', overdue_h: '处置步骤超时', overdue_note: '闭环处置步骤尚未记录，暂无数据。',
  col_area: '区域', col_alarms: '报警数', col_tier_ups: '升级', col_avg: '每10分钟报警数（平均）',
  col_peak: '每10分钟报警数（峰值）', col_floods: '报警泛滥', col_flood_pct: '泛滥时间占比', col_chatter: '振荡报警',
  col_fleeting: '瞬时报警', col_stale: '长期报警', col_verdict: '评价', col_day: '日期', col_shift: '班次',
  col_start: '开始', col_end: '结束', col_duration: '持续时间', col_peak_short: '峰值', col_rank: '序号',
  col_point: '测点', col_rule: '规则', col_max_tier: '最高级别', col_first: '首次', col_times: '次数',
  col_tier: '级别', col_raised: '发生时间', col_active: '已持续', col_acked: '已确认', col_count: '数量',
  col_shortest: '最短', col_median: '中位数', col_p90: 'P90', col_max: '最大', col_never_acked: '未确认',
  col_not_cleared: '未恢复', ack_time: '确认时间', clear_time: '恢复时间', col_mix: '级别分布（红/橙/黄/蓝）',
  level_acceptable: '可接受', level_manageable: '可管理', level_overloaded: '超负荷',
  shift_day: '白班', shift_night: '夜班', yes: '是', no: '否', none: '无', total: '合计',
  rule_high: '高限', rule_low: '低限', rule_rate: '变化率', rule_forecast: '趋势预测', rule_stale: '数据中断',
  rule_stuck: '数值卡死', rule_glitch: '跳变', rule_range: '超量程', rule_disagree: '冗余不一致',
  rule_anomaly: '异常', rule_composite: '组合规则',
  s: '{n} 秒', min: '{n} 分', h: '{n} 小时', d: '{n} 天',
  defs: '定义：每10分钟报警数按滑动10分钟窗口计算（报警 = 新触发；升级另计）；10分钟内超过 {flood} 条为报警泛滥，' +
    '重叠的窗口合并为一个时段；同一测点同一规则 {cw} 秒内状态变化 {cn} 次及以上为振荡报警；触发后 {fl} 秒内恢复为瞬时报警；' +
    '时段结束时仍未恢复且已持续超过 24 小时为长期报警。确认时间按每次报警或升级计，恢复时间按报警的最高级别分组。' +
    '评价依据 EEMUA 191 / ISA-18.2：平均每10分钟 ≤{ra} 条可接受、≤{rm} 条可管理，否则超负荷；峰值 ≤{flood} 条；' +
    '泛滥时间 <{fp}%。班次：{shifts}。',
}, {
  title: 'Alarm system performance report', login_title: 'Engineer login', to_wall: 'Wall display',
  loading: 'Loading…', load_failed: 'Load failed: {e}',
  forbidden: 'The alarm system report needs the engineer role or above',
  today: 'Today', yesterday: 'Yesterday', week: 'Last 7 days', custom: 'Custom', from: 'From', to: 'To',
  apply: 'Apply', area: 'Console (area)', all_areas: 'All areas', range: '{a} to {b} (UTC{tz})',
  bad_range: 'The start must be before the end',
  consoles_h: 'Per console', floods_h: 'Alarm floods', top_h: 'Top 10 noisiest alarms',
  response_h: 'Time to acknowledge and to clear', chatter_h: 'Chattering alarms', fleeting_h: 'Fleeting alarms',
  stale_h: 'Stale alarms (active > 24 h)', shifts_h: 'By day and shift',
  quiet_hidden: '{n} more shifts (per console) had no alarm and are not listed.', overdue_h: 'Overdue steps',
  overdue_note: 'Closed-loop response steps are not recorded yet: no figures.',
  col_area: 'Area', col_alarms: 'Alarms', col_tier_ups: 'Escalations', col_avg: 'Alarms / 10 min (avg)',
  col_peak: 'Alarms / 10 min (peak)', col_floods: 'Floods', col_flood_pct: 'Time in flood', col_chatter: 'Chattering',
  col_fleeting: 'Fleeting', col_stale: 'Stale', col_verdict: 'Verdict', col_day: 'Date', col_shift: 'Shift',
  col_start: 'Start', col_end: 'End', col_duration: 'Duration', col_peak_short: 'Peak', col_rank: '#',
  col_point: 'Point', col_rule: 'Rule', col_max_tier: 'Highest tier', col_first: 'First', col_times: 'Times',
  col_tier: 'Tier', col_raised: 'Raised', col_active: 'Active for', col_acked: 'Acknowledged', col_count: 'Count',
  col_shortest: 'Shortest', col_median: 'Median', col_p90: 'P90', col_max: 'Max', col_never_acked: 'Not acked',
  col_not_cleared: 'Not cleared', ack_time: 'Time to acknowledge', clear_time: 'Time to clear',
  col_mix: 'Tier mix (R/O/Y/B)',
  level_acceptable: 'Acceptable', level_manageable: 'Manageable', level_overloaded: 'Overloaded',
  shift_day: 'Day', shift_night: 'Night', yes: 'Yes', no: 'No', none: 'None', total: 'Total',
  rule_high: 'High', rule_low: 'Low', rule_rate: 'Rate', rule_forecast: 'Forecast', rule_stale: 'Offline',
  rule_stuck: 'Stuck', rule_glitch: 'Glitch', rule_range: 'Out of range', rule_disagree: 'Disagreement',
  rule_anomaly: 'Anomaly', rule_composite: 'Composite',
  s: '{n} s', min: '{n} min', h: '{n} h', d: '{n} d',
  defs: 'Definitions: alarms per 10 min over a sliding 10-min window (an alarm is a new raise; escalations are ' +
    'counted apart); more than {flood} in 10 min is a flood, overlapping windows making one period; {cn}+ ' +
    'transitions of one point\'s rule within {cw} s is chattering; cleared within {fl} s of being raised is ' +
    'fleeting; still active at the end and raised more than 24 h before is stale. Time to acknowledge is per ' +
    'raise or escalation; time to clear is grouped by the alarm\'s highest tier. Verdict per EEMUA 191 / ' +
    'ISA-18.2: average ≤{ra} per 10 min acceptable, ≤{rm} manageable, else overloaded; peak ≤{flood}; time in ' +
    'flood <{fp} %. Shifts: {shifts}.',
});

Object.assign(S, {
  gen: 0, me: null, plant: null, areas: {}, names: {}, report: null,
  range: 'today', custom: null, area: '', tzMin: 8 * 60, tz: '+08:00',
});

const level = (lv) => h('span', { class: 'rq-level', 'data-level': lv }, t('level_' + lv));
const areaName = (id) => nm(S.areas[id]) || id;
const pointName = (id) => nm(S.names[id]) || id;
const ruleName = (r) => (I18N.zh['rule_' + r] ? t('rule_' + r) : r);
const shiftName = (s) => (I18N.zh['shift_' + s] ? t('shift_' + s) : s);

// ---- numbers and times (plant time: the report's UTC offset) ----
function fmtNum(v, digits) {
  if (v == null || !isFinite(v)) return '—';
  return Number(v).toFixed(digits ?? (Number.isInteger(v) ? 0 : 2));
}
function fmtDur(sec) {
  if (sec == null) return '—';
  if (sec < 60) return t('s', { n: fmtNum(sec, sec < 10 ? 1 : 0) });
  if (sec < 3600) return t('min', { n: fmtNum(sec / 60, 1) });
  if (sec < 2 * DAY) return t('h', { n: fmtNum(sec / 3600, 1) });
  return t('d', { n: fmtNum(sec / DAY, 1) });
}
const p2 = (n) => String(n).padStart(2, '0');
function plantDate(ts) { return new Date((ts + S.tzMin * 60) * 1000); } // read with getUTC*
function fmtTime(ts, withDate = true) {
  if (ts == null) return '—';
  const d = plantDate(ts);
  const time = `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`;
  return withDate ? `${d.getUTCFullYear()}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())} ${time}` : time;
}
function toLocalInput(ts) {
  const d = plantDate(ts);
  return `${d.getUTCFullYear()}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())}T${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}`;
}
function fromLocalInput(v) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(v || '');
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]) / 1000 - S.tzMin * 60 : null;
}
function parseTz(s) {
  const m = /^([+-])(\d{2}):(\d{2})$/.exec(s || '');
  return m ? (m[1] === '-' ? -1 : 1) * (+m[2] * 60 + +m[3]) : 8 * 60;
}
const plantMidnight = (ts) => Math.floor((ts + S.tzMin * 60) / DAY) * DAY - S.tzMin * 60;

function rangeBounds(name = S.range) {
  const now = Math.floor(Date.now() / 1000), midnight = plantMidnight(now);
  switch (name) {
    case 'yesterday': return [midnight - DAY, midnight];
    case 'week': return [midnight - 6 * DAY, now];
    case 'custom': return S.custom;
    default: return [midnight, now];
  }
}

// ---- i18n of the static page ----
function applyLang() {
  translatePage();
  document.title = t('title') + (S.plant ? ' · ' + nm(S.plant) : '');
  $('#plant-name').textContent = S.plant ? nm(S.plant) : '—';
  $('#user').textContent = S.me ? S.me.name : '';
  fillAreas();
  render();
}
function toggleLang() {
  switchLang();
  applyLang();
}

// ---- login / session ----
function logout(invalid) {
  S.gen++;
  forgetToken();
  Object.assign(S, { me: null, report: null });
  document.body.dataset.loaded = 'false';
  showLogin(invalid ? 'bad_token' : '');
  render();
}

function setStatus(key, vars, kind) {
  const el = $('#status');
  el.hidden = !key;
  el.dataset.kind = kind || '';
  el.textContent = key ? t(key, vars) : '';
}

async function start() {
  const gen = ++S.gen;
  $('#login').hidden = true;
  try {
    S.me = await api('/api/me');
  } catch (e) {
    if (gen !== S.gen) return;
    if (e instanceof AuthError) return logout(true);
    // a server without /api/me still serves the report: carry on
  }
  try {  // names of areas and points; the report still reads with ids if this is missing
    const plant = await api('/api/plant');
    S.plant = plant;
    S.areas = Object.fromEntries(plant.areas.map((a) => [a.id, a]));
    S.names = Object.fromEntries([...plant.points, ...(plant.subjects || [])].map((p) => [p.id, p]));
  } catch (e) {
    if (e instanceof AuthError) return logout(true);
  }
  if (gen !== S.gen) return;
  applyLang();
  load();
}

async function load() {
  const gen = S.gen, bounds = rangeBounds();
  if (!bounds) return;
  const [a, b] = bounds;
  if (!(a < b)) return setStatus('bad_range', null, 'error');
  const q = new URLSearchParams({ start: String(a), end: String(b), tz: S.tz });
  if (S.area) q.set('area', S.area);
  setStatus('loading');
  document.body.dataset.loaded = 'false';
  try {
    const report = await api('/api/quality?' + q.toString());
    if (gen !== S.gen) return;
    S.report = report;
    S.tz = report.tz; S.tzMin = parseTz(report.tz);
    setStatus(null);
  } catch (e) {
    if (gen !== S.gen) return;
    if (e instanceof AuthError) return logout(true);
    S.report = null;
    if (e.status === 403) setStatus('forbidden', null, 'error'); else setStatus('load_failed', { e: e.message }, 'error');
  }
  fillAreas();
  render();
  document.body.dataset.loaded = String(!!S.report);
}

// ---- rendering ----
function fillAreas() {
  const sel = $('#area-select');
  const ids = S.plant ? S.plant.areas.map((a) => a.id) : (S.report ? S.report.areas.map((r) => r.area) : []);
  sel.replaceChildren(h('option', { value: '' }, t('all_areas')),
    ...[...new Set([...ids, ...(S.area ? [S.area] : [])])].map((id) => h('option', { value: id }, areaName(id))));
  sel.value = S.area;
}

function table(id, head, rows) {
  const body = rows.length ? rows
    : [h('tr', {}, h('td', { class: 'empty-row', colspan: String(head.children.length) }, t('none')))];
  $(id).replaceChildren(h('thead', {}, head), h('tbody', {}, body));
}
const th = (key, cls, extra) => h('th', { class: cls, ...extra }, t(key));
const num = (v, attrs) => h('td', { class: 'num', ...attrs }, v);
const bad = (n) => h('td', { class: 'num' + (n ? ' bad' : '') }, String(n));

function render() {
  document.querySelectorAll('.rq-range').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.range === S.range)));
  $('#custom-form').hidden = S.range !== 'custom';
  const r = S.report;
  const bounds = r ? [r.start, r.end] : rangeBounds();
  $('#range-label').textContent = bounds ? t('range', { a: fmtTime(bounds[0]), b: fmtTime(bounds[1]), tz: S.tz }) : '';
  if (!r) {
    for (const id of ['#console-table', '#flood-table', '#top-table', '#response-table', '#chatter-table',
      '#fleeting-table', '#stale-table', '#shift-table']) $(id).replaceChildren();
    $('#definitions').textContent = $('#shift-note').textContent = '';
    return;
  }
  renderConsoles(r); renderFloods(r); renderTop(r); renderResponse(r); renderProblems(r); renderShifts(r);
  const d = r.definitions;
  $('#definitions').textContent = t('defs', {
    flood: d.flood_above, cw: d.chatter_window_s, cn: d.chatter_transitions, fl: d.fleeting_s,
    ra: d.rate_acceptable, rm: d.rate_manageable, fp: d.flood_pct_limit,
    shifts: d.shifts.map((s) => `${shiftName(s.name)} ${s.start}–${s.end}`).join(S.lang === 'en' ? ', ' : '，'),
  });
}

function renderConsoles(r) {
  const head = h('tr', {}, th('col_area'), th('col_verdict'), th('col_alarms', 'num'), th('col_tier_ups', 'num'),
    th('col_avg', 'num'), th('col_peak', 'num'), th('col_floods', 'num'), th('col_flood_pct', 'num'),
    th('col_chatter', 'num'), th('col_fleeting', 'num'), th('col_stale', 'num'), th('col_mix', 'num'));
  table('#console-table', head, r.areas.map((a) => {
    const s = a.summary, v = a.verdict;
    return h('tr', { 'data-testid': 'console-row-' + a.area, 'data-level': v.level },
      h('td', {}, areaName(a.area)), h('td', { 'data-testid': 'verdict-' + a.area }, level(v.level)),
      num(String(s.alarms)), num(String(s.tier_ups)),
      num(fmtNum(s.per_10min_avg, 2), { 'data-level': v.average_per_10min.level }),
      num(String(s.per_10min_peak), { 'data-level': v.peak_10min.level }), bad(s.floods),
      num(fmtNum(s.flood_pct, 2) + '%', { 'data-level': v.flood_time_pct.level }),
      bad(s.chattering), bad(s.fleeting), bad(s.stale),
      h('td', { class: 'num' }, TIERS.map((tr) => s.by_tier[tr]).join(' / ')));
  }));
}

function renderFloods(r) {
  const floods = r.areas.flatMap((a) => a.floods.map((f) => ({ ...f, area: a.area }))).sort((x, y) => x.start - y.start);
  const head = h('tr', {}, th('col_area'), th('col_start'), th('col_end'), th('col_duration', 'num'),
    th('col_alarms', 'num'), th('col_peak_short', 'num'));
  table('#flood-table', head, floods.map((f, i) => h('tr', { 'data-testid': 'flood-row-' + i, 'data-area': f.area },
    h('td', {}, areaName(f.area)), num(fmtTime(f.start)), num(fmtTime(f.end)), num(fmtDur(f.duration_s)),
    num(String(f.alarms)), num(String(f.peak)))));
}

function renderTop(r) {
  const head = h('tr', {}, th('col_rank', 'num'), th('col_area'), th('col_point'), th('col_rule'), th('col_alarms', 'num'),
    th('col_tier_ups', 'num'), th('col_fleeting', 'num'), th('col_chatter'), th('col_max_tier'));
  table('#top-table', head, r.top.map((n, i) => h('tr', { 'data-testid': 'top-row-' + i },
    num(String(i + 1)), h('td', {}, areaName(n.area)), h('td', { title: n.point }, pointName(n.point)),
    h('td', {}, ruleName(n.rule)), num(String(n.alarms)), num(String(n.tier_ups)), bad(n.fleeting),
    h('td', { class: n.chattering ? 'bad' : '' }, t(n.chattering ? 'yes' : 'no')), h('td', {}, chip(n.max_tier)))));
}

function renderResponse(r) {
  const head = [
    h('tr', {}, h('th', { rowspan: '2' }, t('col_area')), h('th', { rowspan: '2' }, t('col_tier')),
      h('th', { colspan: '5', class: 'group' }, t('ack_time')), h('th', { colspan: '5', class: 'group' }, t('clear_time'))),
    h('tr', {}, ...['col_count', 'col_median', 'col_p90', 'col_max', 'col_never_acked',
      'col_count', 'col_median', 'col_p90', 'col_max', 'col_not_cleared'].map((k) => th(k, 'num'))),
  ];
  const rows = [];
  for (const a of r.areas) {
    for (const tier of TIERS) {
      const ack = a.summary.ack[tier], clr = a.summary.clear[tier];
      if (!ack.count && !ack.never_acked && !clr.count && !clr.not_cleared) continue;
      rows.push(h('tr', { 'data-testid': `response-${a.area}-${tier}` }, h('td', {}, areaName(a.area)), h('td', {}, chip(tier)),
        num(String(ack.count)), num(fmtDur(ack.median_s)), num(fmtDur(ack.p90_s)), num(fmtDur(ack.max_s)), bad(ack.never_acked),
        num(String(clr.count)), num(fmtDur(clr.median_s)), num(fmtDur(clr.p90_s)), num(fmtDur(clr.max_s)), bad(clr.not_cleared)));
    }
  }
  $('#response-table').replaceChildren(h('thead', {}, head),
    h('tbody', {}, rows.length ? rows : [h('tr', {}, h('td', { class: 'empty-row', colspan: '12' }, t('none')))]));
}

function renderProblems(r) {
  const chatter = r.areas.flatMap((a) => a.chattering.map((c) => ({ ...c, area: a.area })));
  table('#chatter-table', h('tr', {}, th('col_area'), th('col_point'), th('col_rule'), th('col_first'), th('col_times', 'num')),
    chatter.map((c) => h('tr', { 'data-testid': 'chatter-row' }, h('td', {}, areaName(c.area)),
      h('td', { title: c.point }, pointName(c.point)), h('td', {}, ruleName(c.rule)), num(fmtTime(c.first_ts)), num(String(c.times)))));

  const fleeting = {};  // one row per (area, point, rule): how often, and the shortest
  for (const a of r.areas) {
    for (const f of a.fleeting) {
      const k = `${a.area}|${f.point}|${f.rule}`;
      const row = (fleeting[k] ??= { area: a.area, point: f.point, rule: f.rule, n: 0, shortest: Infinity });
      row.n += 1; row.shortest = Math.min(row.shortest, f.duration_s);
    }
  }
  table('#fleeting-table', h('tr', {}, th('col_area'), th('col_point'), th('col_rule'), th('col_count', 'num'), th('col_shortest', 'num')),
    Object.values(fleeting).sort((x, y) => y.n - x.n).map((f) => h('tr', { 'data-testid': 'fleeting-row' },
      h('td', {}, areaName(f.area)), h('td', { title: f.point }, pointName(f.point)), h('td', {}, ruleName(f.rule)),
      num(String(f.n)), num(fmtDur(f.shortest)))));

  const stale = r.areas.flatMap((a) => a.stale.map((s) => ({ ...s, area: a.area })));
  table('#stale-table', h('tr', {}, th('col_area'), th('col_point'), th('col_rule'), th('col_tier'), th('col_raised'),
    th('col_active', 'num'), th('col_acked')),
  stale.map((s) => h('tr', { 'data-testid': 'stale-row-' + s.alert_id }, h('td', {}, areaName(s.area)),
    h('td', { title: s.point }, pointName(s.point)), h('td', {}, ruleName(s.rule)), h('td', {}, chip(s.tier)),
    num(fmtTime(s.raised_at)), num(fmtDur(s.active_s)), h('td', { class: s.acked ? '' : 'bad' }, t(s.acked ? 'yes' : 'no')))));
}

// A shift with nothing to say (no alarm, no flood, nothing standing) is left out: the note under the table says so.
function renderShifts(r) {
  const busy = (s) => s.alarms || s.tier_ups || s.per_10min_peak || s.floods || s.chattering || s.stale;
  const all = r.areas.flatMap((a) => a.shifts.map((s) => ({ ...s, area: a.area })));
  const rows = all.filter(busy).sort((x, y) => x.start - y.start || x.area.localeCompare(y.area));
  $('#shift-note').textContent = t('quiet_hidden', { n: all.length - rows.length });
  const head = h('tr', {}, th('col_day'), th('col_shift'), th('col_area'), th('col_alarms', 'num'), th('col_tier_ups', 'num'),
    th('col_avg', 'num'), th('col_peak', 'num'), th('col_floods', 'num'), th('col_flood_pct', 'num'),
    th('col_chatter', 'num'), th('col_fleeting', 'num'), th('col_stale', 'num'));
  const lv = (v, ok, mid) => (v <= ok ? 'acceptable' : mid != null && v <= mid ? 'manageable' : 'overloaded');
  const d = r.definitions;
  table('#shift-table', head, rows.map((s) => h('tr', { 'data-testid': `shift-${s.day}-${s.shift}-${s.area}` },
    num(s.day), h('td', {}, shiftName(s.shift)), h('td', {}, areaName(s.area)), num(String(s.alarms)), num(String(s.tier_ups)),
    num(fmtNum(s.per_10min_avg, 2), { 'data-level': lv(s.per_10min_avg, d.rate_acceptable, d.rate_manageable) }),
    num(String(s.per_10min_peak), { 'data-level': lv(s.per_10min_peak, d.flood_above) }), bad(s.floods),
    num(fmtNum(s.flood_pct, 2) + '%', { 'data-level': s.flood_pct < d.flood_pct_limit ? 'acceptable' : 'overloaded' }),
    bad(s.chattering), bad(s.fleeting), bad(s.stale))));
}

// ---- wiring ----
$('#login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const token = $('#login-token').value.trim();
  if (!token) return;
  saveToken(token);  // the wall display's key: one login for both pages
  start();
});
document.querySelectorAll('.lang-btn').forEach((b) => b.addEventListener('click', toggleLang));
$('#logout-btn').addEventListener('click', () => logout(false));
document.querySelectorAll('.rq-range').forEach((b) => b.addEventListener('click', () => {
  S.range = b.dataset.range;
  if (S.range === 'custom') {  // start from what is shown; the engineer edits it and applies
    const [a, z] = S.custom || (S.report ? [S.report.start, S.report.end] : rangeBounds('today'));
    $('#custom-from').value = toLocalInput(a);
    $('#custom-to').value = toLocalInput(z);
    render();
    return;
  }
  load();
}));
$('#custom-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const a = fromLocalInput($('#custom-from').value), b = fromLocalInput($('#custom-to').value);
  if (a == null || b == null || !(a < b)) return setStatus('bad_range', null, 'error');
  S.custom = [a, b];
  load();
});
$('#area-select').addEventListener('change', (e) => { S.area = e.target.value; load(); });
window.riskwatchQuality = { state: S };  // for debugging and automated tests

applyLang();
if (S.token) start(); else showLogin('');
