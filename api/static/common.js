'use strict';
// What the wall display (app.js, lifecycle.js) and the alarm-system report (quality.js) share. One login and one
// language serve both pages: the token in localStorage riskwatch.token, the language in riskwatch.lang.
// Loaded first by both pages; vanilla JS, no build step.

// The page's state: each page adds its own fields (Object.assign(S, {...})).
const S = {
  lang: localStorage.getItem('riskwatch.lang') === 'en' ? 'en' : 'zh',
  token: localStorage.getItem('riskwatch.token') || '',
};

// Strings both pages show; each page adds its own with strings(zh, en), every key in both languages.
const I18N = {
  zh: {
    token: '访问令牌', token_ph: '请输入访问令牌', login: '登录', logout: '退出', bad_token: '令牌无效', lang_btn: 'EN',
    tier_red: '红色', tier_orange: '橙色', tier_yellow: '黄色', tier_blue: '蓝色', tier_normal: '正常',
  },
  en: {
    token: 'Access token', token_ph: 'Enter access token', login: 'Log in', logout: 'Log out',
    bad_token: 'Invalid token', lang_btn: '中文',
    tier_red: 'Red', tier_orange: 'Orange', tier_yellow: 'Yellow', tier_blue: 'Blue', tier_normal: 'Normal',
  },
};
function strings(zh, en) {
  Object.assign(I18N.zh, zh);
  Object.assign(I18N.en, en);
}

const $ = (sel) => document.querySelector(sel);
const t = (key, vars) => {
  let s = I18N[S.lang][key] ?? I18N.zh[key] ?? key;
  for (const k in vars || {}) s = s.split('{' + k + '}').join(vars[k]);
  return s;
};
const nm = (o) => (o ? (S.lang === 'en' && o.name_en ? o.name_en : o.name) : '');

// Tiny DOM builder: h('div', {class: 'x', 'data-testid': 'y', onclick: fn}, child, 'text', ...)
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v); else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) if (kid != null) el.append(kid);
  return el;
}
const chip = (tier) => h('span', { class: 'chip', 'data-tier': tier }, t('tier_' + tier));

function toast(msg) {
  const el = $('#toast');
  el.textContent = msg; el.hidden = false;
  clearTimeout(toast.timer); toast.timer = setTimeout(() => { el.hidden = true; }, 5000);
}

// ---- language ----
function translatePage() {
  document.documentElement.lang = S.lang === 'en' ? 'en' : 'zh-CN';
  document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll('[data-i18n-ph]').forEach((el) => { el.placeholder = t(el.dataset.i18nPh); });
}
function switchLang() {
  S.lang = S.lang === 'zh' ? 'en' : 'zh';
  localStorage.setItem('riskwatch.lang', S.lang);
}

// ---- login ----
function saveToken(token) {
  S.token = token;
  localStorage.setItem('riskwatch.token', token);
}
function forgetToken() {
  S.token = '';
  localStorage.removeItem('riskwatch.token');
}
function showLogin(messageKey) {
  $('#login').hidden = false;
  const err = $('#login-error');
  if (messageKey) err.dataset.i18n = messageKey; else delete err.dataset.i18n; // re-translated with the page
  err.textContent = messageKey ? t(messageKey) : ''; err.hidden = !messageKey;
  $('#login-token').value = '';
  $('#login-token').focus();
}

// ---- the API: bearer token; 401 is an AuthError (log in again); other failures carry the status and the
// server's `detail` as the message (a 409 says in words why the alarm's state refused the request)
class AuthError extends Error {}
async function api(path, opts = {}) {
  const headers = { Authorization: 'Bearer ' + S.token };
  if (opts.body != null) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { ...opts, headers });
  if (r.status === 401) throw new AuthError('401');
  if (!r.ok) {
    let detail = '';
    try { detail = (await r.json()).detail; } catch (e) { /* not JSON */ }
    throw Object.assign(new Error(typeof detail === 'string' && detail ? detail : 'HTTP ' + r.status), { status: r.status });
  }
  return r.json();
}
