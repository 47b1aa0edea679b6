# spotq: build, test, and the local PostgreSQL + RabbitMQ the tests use.
#   make demo            the whole pipeline end to end on this machine (installs, builds, starts everything)
#   make services        start them (installs missing packages first); `. .spotq/env`
#   make services-stop   stop them
#   make build           install missing packages, swift build
#   make test            install (apt, and pika into .spotq/venv), start services, swift test (then the
#                        chaos suite's short form, printing its table), stop services
#   make chaos           the chaos suite at full size (faults and bad inputs; the README's table)
#   make clean           remove build products (.spotq, the services' data, stays)
# SWIFT_TEST_FLAGS passes options to swift test, e.g. SWIFT_TEST_FLAGS='--filter Planner' (the
# chaos step is left out then).

SWIFT ?= swift
SWIFT_TEST_FLAGS ?=
SHELL := /bin/bash

.PHONY: demo services services-stop services-status build test chaos clean

demo:
	scripts/demo.sh

services:
	scripts/services.sh up

services-stop:
	scripts/services.sh down

services-status:
	scripts/services.sh status

build:
	scripts/install-deps.sh
	$(SWIFT) build

# One shell for the whole recipe, so the EXIT trap stops the services however
# swift test ends (failure, Ctrl-C) and the recipe exits with swift test's status.
# Stopping is quiet (its output goes to .spotq/services-stop.log) so that swift
# test's closing lines are the last thing printed.
test:
	@scripts/services.sh up || { status=$$?; scripts/services.sh down >/dev/null 2>&1; exit $$status; }; \
	scripts/install-python-clients.sh || { status=$$?; scripts/services.sh down >/dev/null 2>&1; exit $$status; }; \
	trap 'scripts/services.sh down >.spotq/services-stop.log 2>&1 || echo "make test: stopping services failed, see .spotq/services-stop.log" >&2' EXIT; \
	trap 'exit 130' INT; trap 'exit 143' TERM; \
	. .spotq/env; \
	if [ -n "$(SWIFT_TEST_FLAGS)" ]; then $(SWIFT) test $(SWIFT_TEST_FLAGS); exit; fi; \
	$(SWIFT) test --skip 'ChaosTests' && SWIFT=$(SWIFT) scripts/chaos.sh short

# The chaos suite at full size: its own run, so no other test competes for the 2 cores.
chaos:
	@scripts/services.sh up || { status=$$?; scripts/services.sh down >/dev/null 2>&1; exit $$status; }; \
	scripts/install-python-clients.sh || { status=$$?; scripts/services.sh down >/dev/null 2>&1; exit $$status; }; \
	trap 'scripts/services.sh down >.spotq/services-stop.log 2>&1 || echo "make chaos: stopping services failed, see .spotq/services-stop.log" >&2' EXIT; \
	trap 'exit 130' INT; trap 'exit 143' TERM; \
	SWIFT=$(SWIFT) scripts/chaos.sh full

clean:
	rm -rf .build
