#!/usr/bin/env bash
# Installs the Debian 12 packages spotq needs to build and test, and nothing else:
#   build:   pkg-config, libpq-dev, librabbitmq-dev, libcurl4-openssl-dev
#   servers: postgresql-15 (+ client tools), rabbitmq-server (3.10, with Erlang)
#   tests:   openssl, python3 + python3-venv (scripts/install-python-clients.sh adds pika
#            and websocket-client), chromium (the dashboard test drives it headless),
#            docker-compose (validates compose/ with `docker-compose config`; no engine needed),
#            the scripts' lint (ShellCheck), git, curl and ca-certificates (devcloud pods run
#            the real pod bootstrap, which clones ComfyUI's stand-in and fetches the binary)
#
# Idempotent and fast when everything is present: it asks dpkg first and only
# runs `apt-get update` + `apt-get install` (once) when something is missing, so
# repeat runs work offline. Needs root (or passwordless sudo) only in that case.
#
# Installing postgresql or rabbitmq-server normally starts a system-wide server
# on the default ports. spotq never uses those (scripts/services.sh runs private
# instances on other ports), so while apt runs we install a temporary
# /usr/sbin/policy-rc.d that tells invoke-rc.d not to start daemons — unless the
# machine already has one, which we leave alone. This saves memory and CPU on
# small CI machines and avoids a package configure step failing because a
# system service could not start there.
set -euo pipefail

packages=(
    pkg-config
    libpq-dev
    librabbitmq-dev
    libcurl4-openssl-dev
    postgresql-15
    postgresql-client-15
    rabbitmq-server
    openssl          # the CurlClient TLS test makes a throwaway certificate
    python3          # the tests' non-Swift clients (pika, from PyPI, in .spotq/venv)
    python3-venv
    chromium         # the dashboard test: a real headless browser
    docker-compose   # `docker-compose config` checks compose/docker-compose.yml
    shellcheck       # lints scripts/ and the pod bootstrap
    git              # devcloud pods clone ComfyUI's stand-in, as real pods clone ComfyUI
    curl             # the pod bootstrap fetches the spotq binary with it
    ca-certificates
)

is_installed() {
    local status
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) || return 1
    [[ $status == "ii"* ]]
}

missing=()
for package in "${packages[@]}"; do
    is_installed "$package" || missing+=("$package")
done

if ((${#missing[@]} == 0)); then
    echo "install-deps: all packages present (${packages[*]})"
    exit 0
fi

echo "install-deps: installing ${missing[*]}"

sudo=()
if ((EUID != 0)); then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo -n)
    else
        echo "install-deps: missing packages (${missing[*]}) and not root; run as root or install sudo" >&2
        exit 1
    fi
fi

policy=/usr/sbin/policy-rc.d
policy_created=0
remove_policy() {
    if ((policy_created)); then
        "${sudo[@]}" rm -f "$policy"
    fi
}
trap remove_policy EXIT
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# Temporary, from spotq scripts/install-deps.sh: do not start daemons.\nexit 101\n' |
        "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    policy_created=1
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"

for package in "${missing[@]}"; do
    if ! is_installed "$package"; then
        echo "install-deps: $package is still not installed after apt-get" >&2
        exit 1
    fi
done
echo "install-deps: done"
