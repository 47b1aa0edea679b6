#!/bin/sh
# The compose service `credentials` (one shot, after `migrate`): makes spotq's own least-privilege
# logins and leaves each component's in a volume only that component mounts:
#
#   volume                  file                          what
#   server-credentials      server.database-url           PostgreSQL login spotq_server_login (spotq db-users)
#                           server.amqp-url               RabbitMQ user spotq-server (spotq broker-users)
#   provisioner-credentials provisioner.database-url      spotq_provisioner_login
#                           provisioner.amqp-url          spotq-provisioner
#   website-credentials     website.database-url          spotq_website_login, for the website to copy out
#                           website.amqp-url              spotq-website
#
# Each file holds one URL (mode 600, owned by the image's user spotq); the server and the
# provisioner read theirs through SPOTQ_DATABASE_URL_FILE and SPOTQ_AMQP_URL_FILE. The URLs name
# the hosts on the compose network (postgres:5432, rabbitmq:5672).
#
# Logins are made once and kept: running this again (every `docker compose up`) changes nothing
# while the files are there and the broker still knows spotq-server, since new passwords would
# lock out a server that is already running. SPOTQ_RENEW_CREDENTIALS=1 makes new ones (then
# restart the server and the provisioner), as after restoring the postgres-data volume.
#
# Needs SPOTQ_DATABASE_URL (PostgreSQL's owner) and SPOTQ_RABBITMQ_MANAGEMENT_URL (RabbitMQ's
# administrator); scratch files go to /tmp, a tmpfs.
set -eu
umask 077

out=/run/spotq-credentials
components="server provisioner website"
renew=${SPOTQ_RENEW_CREDENTIALS:-}

# All of the components' files named by suffix ($1) are there and not empty.
have_all() {
    for component in $components; do
        [ -s "$out/$component/$component.$1" ] || return 1
    done
}

# Copies $1 to $2 through a temporary name beside $2, so a reader never sees half a file.
place() {
    cp "$1" "$2.new"
    chmod 600 "$2.new"
    mv -f "$2.new" "$2"
}

# The broker knows spotq-server (a new rabbitmq-data volume has none of spotq's users). The
# administrator's URL goes to curl on its standard input, not on its command line.
broker_knows_server_user() {
    printf 'url = "%s/api/users/spotq-server"\n' "$SPOTQ_RABBITMQ_MANAGEMENT_URL" \
        | curl -fsS -o /dev/null --max-time 10 -K -
}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/db" "$scratch/broker"

if [ -n "$renew" ] || ! have_all database-url; then
    spotq db-users --write-to "$scratch/db"
    for component in $components; do
        place "$scratch/db/$component.database-url" "$out/$component/$component.database-url"
    done
    echo "credentials: new PostgreSQL logins for $components"
else
    echo "credentials: PostgreSQL logins kept (SPOTQ_RENEW_CREDENTIALS=1 renews them)"
fi

if [ -n "$renew" ] || ! have_all amqp-url || ! broker_knows_server_user; then
    # Written as <user>.env holding one line, SPOTQ_AMQP_URL=<url>; each volume gets the bare URL.
    spotq broker-users --write-to "$scratch/broker" --broker-url "amqp://rabbitmq:5672/%2F"
    for component in $components; do
        env_file="$scratch/broker/spotq-$component.env"
        sed -n 's/^SPOTQ_AMQP_URL=//p' "$env_file" >"$env_file.url"
        [ -s "$env_file.url" ] || { echo "credentials: $env_file holds no SPOTQ_AMQP_URL line" >&2; exit 1; }
        place "$env_file.url" "$out/$component/$component.amqp-url"
    done
    echo "credentials: new RabbitMQ users for $components"
else
    echo "credentials: RabbitMQ users kept (SPOTQ_RENEW_CREDENTIALS=1 renews them)"
fi
