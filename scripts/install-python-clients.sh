#!/usr/bin/env bash
# Creates .spotq/venv with the Python packages the tests' non-Swift clients use
# (pika, the usual RabbitMQ client of Python websites; websocket-client, to drive
# headless Chromium over its DevTools protocol in the dashboard test), from PyPI. Idempotent:
# does nothing when the venv already has them. Debian's python3 and python3-venv
# come from scripts/install-deps.sh.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.spotq/venv"
requirements="$root/scripts/clients/requirements.txt"

if [[ -x $venv/bin/python ]] && "$venv/bin/python" -c 'import pika, websocket' 2>/dev/null; then
    echo "install-python-clients: $venv is ready"
    exit 0
fi

# Prefer Debian's interpreter: it is the one install-deps.sh installed venv for.
python=/usr/bin/python3
[[ -x $python ]] || python=$(command -v python3)
mkdir -p "$root/.spotq"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
echo "install-python-clients: installed $(tr '\n' ' ' < "$requirements")into $venv"
