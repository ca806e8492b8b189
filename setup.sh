#!/usr/bin/env bash
# Prepares a fresh machine for riskwatch: Debian packages (mosquitto, chromium), a virtualenv in .venv,
# and riskwatch installed into it in editable mode. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v victoria-metrics >/dev/null 2>&1 || [ -x /usr/bin/victoria-metrics ] || need_apt+=(victoria-metrics)
py=${PYTHON:-python3}
"$py" -c "import ensurepip, venv" >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ "${RISKWATCH_SKIP_BROWSER:-0}" != 1 ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || "$py" -m venv .venv
stamp=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat .venv/.setup-stamp 2>/dev/null)" != "$stamp" ]; then
  echo "setup: installing riskwatch and its dependencies into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[test]'
  echo "$stamp" > .venv/.setup-stamp
fi
