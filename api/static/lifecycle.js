'use strict';
// The ISA-18.2 alarm lifecycle on the wall: shelved, out-of-service and suppressed alarms listed apart from the live
// ones; the reset of a latched alarm; shelving and out of service through in-page dialogs, and ending a shelf or an
// out-of-service record early from its row; and the closed loop
// (闭环处置: ack -> verify -> handle -> feedback -> close) of orange and red warnings with its deadlines.
// Loaded after common.js and before app.js, whose state (S), rendering and helpers it uses when called.

const SHELVE_MINUTES = [15, 30, 60, 120, 240, 480];
const OOS_HOURS = [1, 2, 4, 8, 24, 72, 168];
// events after which the open loops may have changed, and those after which the open suppressions may have
const LOOP_KINDS = new Set(['step', 'overdue', 'acked', 'raised', 'tier_up', 'cleared', 'realarm', 'unshelved',
  'in_service', 'unsuppressed']);
const SUPPRESSION_KINDS = new Set(['shelved', 'unshelved', 'out_of_service', 'in_service', 'suppressed',
  'unsuppressed']);

strings({
  latched: '联锁保持·待复位', chattering: '抖动', chattering_hint: '报警抖动：恢复已延迟确认，其间保持显示',
  reset: '复位', shelve: '搁置', unshelve: '解除搁置', return_service: '恢复投用',
  suppressed_title: '搁置 / 停用 / 抑制', col_suppression: '类别及说明', col_until: '截止时间',
  sup_shelved: '搁置', sup_out_of_service: '停用维护', sup_by_design: '设计抑制', until_cause: '随工况恢复',
  no_alarm_now: '当前无报警', oos_tag: '停用维护', oos_count: '停用维护 {n}', maintain_hint: '点击：停用维护 / 恢复投用',
  loops_title: '闭环处置', no_loops: '无待处置的闭环', next_step: '下一步：', record_step: '记录{step}',
  close_needs_engineer: '待工程师销号', due_in: '剩余 {d}', overdue_by: '超时 {d}', deadline_at: '时限 {t}',
  escalated: '已超时上报：{steps}', photo: '照片：{p}', alert_no: '报警 #{id}',
  step_ack: '签收', step_verify: '现场核查', step_handle: '处置', step_feedback: '反馈', step_close: '销号',
  cancel: '取消', record: '记录', note: '说明（可选）', reason_required: '请填写原因',
  shelve_title: '搁置报警', shelve_reason: '搁置原因（必填）', shelve_reason_ph: '如：探头待更换、工艺调整中',
  shelve_minutes: '搁置时长', shelve_hint: '搁置期间该报警不计入报警、不发通知；到期自动恢复；升级超过当前级别时立即恢复。',
  oos_title: '停用维护', oos_reason: '停用原因（必填）', oos_reason_ph: '如：探头校验、设备检修', oos_hours: '停用时长',
  oos_hint: '停用期间该测点的报警只记录，不报警、不通知，测点显示“停用维护”；到期自动恢复投用。',
  rts_title: '恢复投用', rts_info: '{who}停用：{reason}，至 {until}',
  step_note: '处置说明', step_note_ph: '现场情况、采取的措施…', step_photo: '照片编号或链接（可选）',
  step_photo_ph: '如：IMG_0412.jpg', minutes_n: '{n} 分钟', hours_n: '{n} 小时', days_n: '{n} 天',
  ends_gateway: '随网关恢复自动解除', ends_line: '随设备恢复运行自动解除', ends_cause: '随工况恢复自动解除',
  failed_because: '{what}：{why}', forbidden_because: '无权限执行此操作（{why}）', shelve_failed: '搁置失败',
  unshelve_failed: '解除搁置失败', reset_failed: '复位失败', oos_failed: '停用维护失败', rts_failed: '恢复投用失败', step_failed: '记录处置步骤失败',
  quality_link: '报警系统性能报告',
}, {
  latched: 'Latched, awaiting reset', chattering: 'Chattering',
  chattering_hint: 'Chattering: its return to normal is held, so it stays shown',
  reset: 'Reset', shelve: 'Shelve', unshelve: 'Unshelve', return_service: 'Return to service',
  suppressed_title: 'Shelved / Out of service / Suppressed', col_suppression: 'Kind and note', col_until: 'Until',
  sup_shelved: 'Shelved', sup_out_of_service: 'Out of service', sup_by_design: 'Suppressed by design',
  until_cause: 'until the cause ends', no_alarm_now: 'no alarm now', oos_tag: 'Out of service',
  oos_count: 'Out of service {n}', maintain_hint: 'Click: take out of service / return to service',
  loops_title: 'Closed-loop handling', no_loops: 'No open handling loops', next_step: 'Next:',
  record_step: 'Record: {step}',
  close_needs_engineer: 'Awaiting close-out by an engineer', due_in: '{d} left',
  overdue_by: 'OVERDUE {d}', deadline_at: 'due {t}', escalated: 'Escalated as overdue: {steps}', photo: 'photo: {p}',
  alert_no: 'Alert #{id}',
  step_ack: 'Acknowledge', step_verify: 'Verify on site', step_handle: 'Handle', step_feedback: 'Feedback',
  step_close: 'Close out',
  cancel: 'Cancel', record: 'Record', note: 'Note (optional)', reason_required: 'A reason is required',
  shelve_title: 'Shelve alarm', shelve_reason: 'Reason (required)', shelve_reason_ph: 'e.g. probe awaiting replacement',
  shelve_minutes: 'Shelve for', shelve_hint: 'While shelved the alarm is not counted and nobody is notified; it returns ' +
    'when the time is up, or at once if it rises above its current tier.',
  oos_title: 'Take out of service', oos_reason: 'Reason (required)', oos_reason_ph: 'e.g. probe calibration, repair',
  oos_hours: 'Out of service for', oos_hint: 'While out of service the point\'s alarms are recorded only: no alarm, ' +
    'no notification, and the point shows "Out of service". It returns to service when the time is up.',
  rts_title: 'Return to service', rts_info: 'Taken out of service by {who}: {reason}, until {until}',
  step_note: 'What was found and done', step_note_ph: 'Findings on site, action taken…',
  step_photo: 'Photo reference (optional)', step_photo_ph: 'e.g. IMG_0412.jpg',
  minutes_n: '{n} min', hours_n: '{n} h', days_n: '{n} days',
  ends_gateway: 'Ends by itself when the gateway is back', ends_line: 'Ends by itself when the equipment runs again',
  ends_cause: 'Ends by itself when its cause ends',
  failed_because: '{what}: {why}', forbidden_because: 'Not allowed for your role ({why})',
  shelve_failed: 'Shelve failed', unshelve_failed: 'Unshelve failed',
  reset_failed: 'Reset failed', oos_failed: 'Taking out of service failed', rts_failed: 'Return to service failed',
  step_failed: 'Recording the step failed', quality_link: 'Alarm system report',
});

Object.assign(S, {
  suppressions: [],  // open suppressions (snapshot, `suppressions` messages, GET /api/suppressions)
  loops: [],         // open closed loops, oldest first (GET /api/loops)
});

// ---- data ----
function setSuppressions(list) {
  S.suppressions = list;
  S.dirty.alerts = true;
}
const outOfService = (pointId) => S.suppressions.find((s) => s.kind === 'out_of_service' && s.point === pointId);
const covers = (s, al) => s.point === al.point && (!s.rules || s.rules.includes(al.rule));
const suppressionOf = (al) => S.suppressions.find((s) => s.kind === al.suppressed && covers(s, al));

function lifecycleEvent(ev) {
  if (LOOP_KINDS.has(ev.kind)) refreshSoon('loops');
  if (SUPPRESSION_KINDS.has(ev.kind)) refreshSoon('suppressions');
}

const REFRESH = {
  loops: ['/api/loops', (loops) => { S.loops = loops; S.dirty.loops = true; }],
  suppressions: ['/api/suppressions', setSuppressions],
};
// Debounced: a replay of many events asks once.
function refreshSoon(what) {
  clearTimeout(refreshSoon[what]);
  refreshSoon[what] = setTimeout(async () => {
    const gen = S.gen, [path, apply] = REFRESH[what];
    if (!S.token) return;
    try {
      const data = await api(path);
      if (gen !== S.gen) return;
      apply(data);
      render();
    } catch (e) {
      if (gen === S.gen && e instanceof AuthError) logout(true);  // anything else: the next event or tick retries
    }
  }, 200);
}

// A lifecycle request: {data}, or {error} said in a toast (a 409's detail names what the alarm's state refused).
async function post(path, body, failKey) {
  const gen = S.gen;
  try {
    return { data: await api(path, { method: 'POST', body: JSON.stringify(body) }) };
  } catch (e) {
    if (gen !== S.gen) return { error: '' };
    if (e instanceof AuthError) { logout(true); return { error: '' }; }
    const why = e.status !== 403 ? e.message
      : e.message.startsWith('HTTP ') ? t('forbidden') : t('forbidden_because', { why: e.message });
    const error = t('failed_because', { what: t(failKey), why });
    toast(error);
    return { error };
  }
}

// ---- alert rows ----
function lifecycleButtons(al) {
  if (!can('operator')) return [];
  const out = [];
  if (al.state === 'latched') {
    out.push(h('button', { class: 'btn btn-reset', 'data-testid': 'reset-' + al.id, onclick: (e) => reset(al, e.currentTarget) },
      t('reset')));
  }
  if (al.state === 'active' && al.tier !== 'red' && !al.suppressed) {
    out.push(h('button', { class: 'btn btn-shelve', 'data-testid': 'shelve-' + al.id, onclick: () => openShelveDialog(al) },
      t('shelve')));
  }
  return out;
}

async function reset(al, btn) {
  btn.disabled = true;
  const { data } = await post(`/api/alerts/${al.id}/reset`, { note: '' }, 'reset_failed');
  if (data) upsertAlert(data); else btn.disabled = false;
  render();
}

async function unshelve(al, btn) {
  btn.disabled = true;
  const { data } = await post(`/api/alerts/${al.id}/unshelve`, { note: '' }, 'unshelve_failed');
  if (data) upsertAlert(data); else btn.disabled = false;
  render();
}

// Ends one shelf early, alarm or no alarm (an operator's; it acknowledges a standing alarm under it, as unshelve does).
// The section is redrawn from the `suppressions` push every wall gets, this one included, not from the answer.
async function endShelf(s, btn) {
  btn.disabled = true;
  const { data } = await post(`/api/suppressions/${s.id}/end`, { note: '' }, 'unshelve_failed');
  if (!data) btn.disabled = false;
}
const endShelfButton = (s) => h('button', { class: 'btn', 'data-testid': 'unshelve-sup-' + s.id,
  onclick: (e) => endShelf(s, e.currentTarget) }, t('unshelve'));
const returnButton = (s, testid) => h('button', { class: 'btn', 'data-testid': testid,
  onclick: () => openEndOutOfServiceDialog(s) }, t('return_service'));

// A suppression by design cannot be ended by hand (the server refuses): the row says what will end it.
function byDesignEnd(s) {
  const rules = (s && s.rules) || [];
  const key = rules.length === 1 && rules[0] === 'stale' ? 'ends_gateway'  // a gateway offline: its points' silence
    : rules.includes('high') || rules.includes('low') ? 'ends_line'        // a line stopped: its process alarms
    : 'ends_cause';
  return h('span', { class: 'muted sup-auto', 'data-testid': 'sup-auto' }, t(key));
}

function suppressedActions(al) {
  const out = [], s = suppressionOf(al);
  if (al.state === 'cleared' && !isAcked(al) && can('operator')) {  // listed until someone acknowledges it
    out.push(h('button', { class: 'btn btn-ack', 'data-testid': 'ack-' + al.id, onclick: (e) => ack(al.id, e.currentTarget) },
      t('ack')));
  }
  if (al.suppressed === 'shelved' && can('operator')) {
    if (al.state !== 'cleared') {
      out.push(h('button', { class: 'btn', 'data-testid': 'unshelve-' + al.id, onclick: (e) => unshelve(al, e.currentTarget) },
        t('unshelve')));
    } else if (s) {  // back to normal under its shelf: the shelf itself is ended
      out.push(endShelfButton(s));
    }
  }
  if (al.suppressed === 'out_of_service' && s && can('engineer')) out.push(returnButton(s, 'return-' + al.id));
  if (al.suppressed === 'by_design') out.push(byDesignEnd(s));
  return out;
}

function untilText(s, kind) {
  if (s && s.until != null) return fmtTime(s.until);
  return kind === 'by_design' ? t('until_cause') : '—';
}
function suppressionText(kind, s, zhNote) {
  if (S.lang === 'zh' && zhNote) return zhNote;
  return t('sup_' + kind) + (s ? ` (${s.started_by ? s.started_by + ': ' : ''}${s.reason})` : '');
}

// Suppressed alarms, and people's suppressions with no alarm listed (a point in maintenance, a shelved alarm back
// to normal): collapsed under their own heading, never counted as live.
function renderSuppressed() {
  const alerts = Object.values(S.alerts).filter((al) => !isLive(al)).sort(byTierThenNewest);
  const covered = new Set(alerts.map(suppressionOf).filter(Boolean).map((s) => s.id));
  const bare = S.suppressions.filter((s) => s.kind !== 'by_design' && !covered.has(s.id));
  const rows = alerts.map((al) => {
    const s = suppressionOf(al);
    return h('tr', { 'data-testid': 'suppressed-row-' + al.id, 'data-kind': al.suppressed, 'data-tier': al.tier,
      'data-state': al.state, class: 'suppressed ' + al.state },
    h('td', {}, chip(al.tier)),
    h('td', {}, nm(S.areas[al.area]) || al.area),
    h('td', {}, subjectName(al.point)),
    h('td', { class: 'reason' }, reasonOf(al)),
    h('td', { class: 'state' }, alertState(al),
      al.chattering ? h('span', { class: 'badge badge-chatter' }, t('chattering')) : null),
    h('td', { class: 'sup-note', 'data-testid': 'suppressed-note-' + al.id },
      suppressionText(al.suppressed, s, al.suppressed_note)),
    h('td', { class: 'num', 'data-testid': 'suppressed-until-' + al.id }, untilText(s, al.suppressed)),
    h('td', { class: 'col-ack' }, h('div', { class: 'actions' }, suppressedActions(al))));
  });
  for (const s of bare) {
    const p = S.points[s.point] || S.subjects[s.point];
    rows.push(h('tr', { 'data-testid': 'suppression-' + s.id, 'data-kind': s.kind, class: 'suppressed' },
      h('td', {}, s.max_tier ? chip(s.max_tier) : '—'),
      h('td', {}, p ? nm(S.areas[p.area]) || p.area : '—'),
      h('td', {}, subjectName(s.point)),
      h('td', { class: 'reason muted' }, t('no_alarm_now')),
      h('td', { class: 'state' }, '—'),
      h('td', { class: 'sup-note' }, suppressionText(s.kind, s, null)),
      h('td', { class: 'num' }, untilText(s, s.kind)),
      h('td', { class: 'col-ack' },
        s.kind === 'out_of_service' && can('engineer') ? returnButton(s, 'return-sup-' + s.id)
          : s.kind === 'shelved' && can('operator') ? endShelfButton(s) : null)));
  }
  $('#suppressed-body').replaceChildren(...rows);
  $('#suppressed').hidden = rows.length === 0;
  $('#suppressed-count').textContent = String(rows.length);
}

// ---- the closed loop ----
// the server names steps in Chinese (step_zh, next_step_zh); English ones are ours, capitalised for labels
const stepName = (key, zh) => (S.lang === 'zh' && zh ? zh : t('step_' + key));

function renderLoops() {
  const canStep = can('operator'), canClose = can('engineer');
  $('#loops').replaceChildren(...S.loops.map((lp) => {
    const id = lp.alert_id, next = lp.next_step, about = S.alerts[id] || S.known[id];
    const nextName = next ? stepName(next, lp.next_step_zh) : '';
    let action = null;
    if (next && canStep && (next !== 'close' || canClose)) {
      action = h('button', { class: 'btn btn-step', 'data-testid': 'loop-step-' + id, 'data-step': next,
        onclick: () => openStepDialog(lp) }, t('record_step', { step: nextName }));
    } else if (next === 'close' && canStep) {
      action = h('span', { class: 'muted', 'data-testid': 'loop-close-waiting-' + id }, t('close_needs_engineer'));
    }
    return h('li', { class: 'loop', 'data-testid': 'loop-' + id, 'data-tier': lp.tier, 'data-next-step': next || '',
      'data-overdue': 'false' },
    h('div', { class: 'loop-head' }, chip(lp.tier),
      h('span', { class: 'loop-subject' }, about
        ? `${nm(S.areas[about.area]) || about.area} · ${subjectName(about.point)}` : t('alert_no', { id })),
      h('span', { class: 'loop-since num' }, fmtTime(lp.since))),
    h('ol', { class: 'loop-steps' }, lp.steps.map((s) => h('li', { 'data-step': s.step },
      h('span', { class: 'step-name' }, '✓ ' + stepName(s.step, s.step_zh)),
      h('span', { class: 'step-who' }, `${s.actor} · ${fmtTime(s.at)}`),
      s.note ? h('span', { class: 'step-note' }, s.note) : null,
      s.photo ? h('span', { class: 'step-photo' }, t('photo', { p: s.photo })) : null))),
    lp.overdue.length ? h('div', { class: 'loop-escalated' },
      t('escalated', { steps: lp.overdue.map((st) => stepName(st)).join(S.lang === 'en' ? ', ' : '、') })) : null,
    next ? h('div', { class: 'loop-next' },
      h('span', {}, t('next_step')), h('strong', { 'data-testid': 'loop-next-' + id }, nextName),
      h('span', { class: 'deadline num', 'data-testid': 'loop-deadline-' + id, 'data-deadline': lp.deadline ?? '',
        'data-overdue-listed': String(lp.overdue.includes(next)) }),
      action) : null);
  }));
  $('#no-loops').hidden = S.loops.length > 0;
  $('#loop-count').textContent = S.loops.length ? String(S.loops.length) : '';
  updateCountdowns();
}

function fmtLeft(sec) {
  sec = Math.max(0, Math.floor(sec));
  if (sec >= 2 * 86400) return t('days_n', { n: Math.floor(sec / 86400) });
  const p2 = (n) => String(n).padStart(2, '0'), hh = Math.floor(sec / 3600), mm = Math.floor(sec / 60) % 60;
  return (hh ? `${hh}:${p2(mm)}` : String(mm)) + ':' + p2(sec % 60);
}
// Every tick: the countdowns run on the server's clock; past the deadline (or reported overdue) they turn red.
function updateCountdowns() {
  const now = serverNow();
  for (const el of document.querySelectorAll('#loops [data-deadline]')) {
    if (el.dataset.deadline === '') continue;
    const due = Number(el.dataset.deadline), left = due - now;
    const overdue = left < 0 || el.dataset.overdueListed === 'true';
    el.dataset.overdue = String(overdue);
    el.closest('.loop').dataset.overdue = String(overdue);
    el.textContent = t(overdue ? 'overdue_by' : 'due_in', { d: fmtLeft(Math.abs(left)) });
    el.title = t('deadline_at', { t: fmtTime(due, true) });
  }
}

// ---- dialogs (in-page: a wall never shows a browser prompt) ----
const durationLabel = (min) => (min >= 2 * 1440 && min % 1440 === 0 ? t('days_n', { n: min / 1440 })
  : min >= 60 ? t('hours_n', { n: min / 60 }) : t('minutes_n', { n: min }));

function field(label, input) {
  return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), input);
}
function textInput(name, ph, required) {
  return h('input', { name, type: 'text', 'data-testid': 'dialog-' + name, placeholder: ph, required, maxlength: '500',
    autocomplete: 'off' });
}
function choice(name, options, chosen) {
  return h('select', { name, 'data-testid': 'dialog-' + name },
    options.map(([value, label]) => h('option', { value: String(value), selected: value === chosen }, label)));
}

// fields: [[label, input]]; onSubmit(values) -> post()'s answer: the dialog closes on data, stays open on an error
function openDialog({ title, about, info, fields, submit, onSubmit }) {
  const dlg = $('#dialog');
  const error = h('p', { class: 'dialog-error', 'data-testid': 'dialog-error', role: 'alert', hidden: true });
  const ok = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'dialog-submit' }, submit);
  const form = h('form', { class: 'dialog-form', novalidate: true },
    h('h2', { id: 'dialog-title', 'data-testid': 'dialog-title' }, title),
    about ? h('p', { class: 'dialog-about', 'data-testid': 'dialog-about' }, about) : null,
    info ? h('p', { class: 'dialog-info' }, info) : null,
    fields.map(([label, input]) => field(label, input)),
    error,
    h('div', { class: 'dialog-buttons' },
      h('button', { type: 'button', class: 'btn', 'data-testid': 'dialog-cancel', onclick: closeDialog }, t('cancel')), ok));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const values = Object.fromEntries(new FormData(form).entries());
    const missing = fields.map(([, input]) => input).find((input) => input.required && !input.value.trim());
    if (missing) { error.textContent = t('reason_required'); error.hidden = false; missing.focus(); return; }
    ok.disabled = true;
    const answer = await onSubmit(values);
    ok.disabled = false;
    if (answer.data) closeDialog();
    else { error.textContent = answer.error; error.hidden = !answer.error; }
  });
  dlg.replaceChildren(form);
  if (!dlg.open) dlg.showModal();
  (form.querySelector('input, textarea, select') || ok).focus();
}
function closeDialog() {
  const dlg = $('#dialog');
  if (dlg.open) dlg.close();
  dlg.replaceChildren();
}
const aboutAlert = (al) => `${t('tier_' + al.tier)} · ${nm(S.areas[al.area]) || al.area} · ${subjectName(al.point)} · ${reasonOf(al)}`;

function openShelveDialog(al) {
  openDialog({
    title: t('shelve_title'), about: aboutAlert(al), info: t('shelve_hint'), submit: t('shelve'),
    fields: [[t('shelve_reason'), textInput('reason', t('shelve_reason_ph'), true)],
      [t('shelve_minutes'), choice('minutes', SHELVE_MINUTES.map((m) => [m, durationLabel(m)]), 60)]],
    onSubmit: async (v) => {
      const answer = await post(`/api/alerts/${al.id}/shelve`, { reason: v.reason.trim(), minutes: Number(v.minutes) },
        'shelve_failed');
      if (answer.data) { upsertAlert(answer.data); render(); }
      return answer;
    },
  });
}

// An engineer takes a point out of service for maintenance, or returns it.
function openPointDialog(pointId) {
  const p = S.points[pointId], about = `${nm(S.areas[p.area]) || p.area} · ${nm(p)}`, s = outOfService(pointId);
  const done = (answer) => {  // the point's out-of-service records now open
    if (answer.data) {
      setSuppressions(S.suppressions.filter((x) => !(x.kind === 'out_of_service' && x.point === pointId))
        .concat(answer.data));
      render();
    }
    return answer;
  };
  if (s) {
    openDialog({
      title: t('rts_title'), about, submit: t('return_service'),
      info: t('rts_info', { who: s.started_by || '', reason: s.reason, until: untilText(s, s.kind) }),
      fields: [[t('note'), textInput('note', '', false)]],
      onSubmit: async (v) => done(await post(`/api/points/${encodeURIComponent(pointId)}/return-to-service`,
        { note: v.note.trim() }, 'rts_failed')),
    });
    return;
  }
  openDialog({
    title: t('oos_title'), about, info: t('oos_hint'), submit: t('oos_title'),
    fields: [[t('oos_reason'), textInput('reason', t('oos_reason_ph'), true)],
      [t('oos_hours'), choice('hours', OOS_HOURS.map((n) => [n, durationLabel(n * 60)]), 8)]],
    onSubmit: async (v) => done(await post(`/api/points/${encodeURIComponent(pointId)}/out-of-service`,
      { reason: v.reason.trim(), hours: Number(v.hours) }, 'oos_failed')),
  });
}

// An engineer ends one out-of-service record early (a point may carry more than one: the tile's dialog ends them all).
function openEndOutOfServiceDialog(s) {
  const p = S.points[s.point] || S.subjects[s.point];
  openDialog({
    title: t('rts_title'), submit: t('return_service'),
    about: (p ? `${nm(S.areas[p.area]) || p.area} · ` : '') + subjectName(s.point),
    info: t('rts_info', { who: s.started_by || '', reason: s.reason, until: untilText(s, s.kind) }),
    fields: [[t('note'), textInput('note', '', false)]],
    // the record leaves the section with the `suppressions` push, as on every other wall
    onSubmit: (v) => post(`/api/suppressions/${s.id}/end`, { note: v.note.trim() }, 'rts_failed'),
  });
}

function openStepDialog(lp) {
  const about = S.alerts[lp.alert_id] || S.known[lp.alert_id];
  const name = stepName(lp.next_step, lp.next_step_zh);
  const note = h('textarea', { name: 'note', rows: '3', 'data-testid': 'dialog-note', placeholder: t('step_note_ph'),
    maxlength: '2000' });
  openDialog({
    title: t('record_step', { step: name }), submit: t('record'),
    about: about ? `${t('tier_' + lp.tier)} · ${nm(S.areas[about.area]) || about.area} · ${subjectName(about.point)}`
      : t('alert_no', { id: lp.alert_id }),
    fields: [[t('step_note'), note], [t('step_photo'), textInput('photo', t('step_photo_ph'), false)]],
    onSubmit: async (v) => {
      const answer = await post(`/api/alerts/${lp.alert_id}/steps`,
        { step: lp.next_step, note: v.note.trim(), photo: v.photo.trim() || null }, 'step_failed');
      const loop = answer.data;
      if (loop) {
        S.loops = loop.closed ? S.loops.filter((x) => x.alert_id !== loop.alert_id)
          : S.loops.map((x) => (x.alert_id === loop.alert_id ? loop : x));
        S.dirty.loops = true;
        render();
      }
      return answer;
    },
  });
}
