# Prometheus and Grafana configuration in dashboards/.
#
# Included by the top-level Makefile; also usable on its own from the repository
# root: `make -f mk/dashboards.mk promtool check-dashboards`.
#
#   promtool          install Debian's prometheus package (it ships promtool) when
#                     promtool is missing; the package's service is not started
#   check-dashboards  promtool checks the alert rules and the scrape config
#
# That every zkpow_* metric a dashboard or a rule names is exported is checked
# by the Rust test suite (`cargo test --lib metrics`).

DASH_MK_FILE := $(lastword $(MAKEFILE_LIST))
DASH_MK_DIR := $(patsubst %/,%,$(dir $(DASH_MK_FILE)))
DASH_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)
DASH_ROOT := $(abspath $(DASH_MK_DIR)/..)
DASHBOARDS_DIR := $(DASH_ROOT)/dashboards

PROMTOOL ?= promtool
# root installs directly; anyone else through sudo.
DASH_SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: promtool check-dashboards

## policy-rc.d answering 101 keeps the package's postinst from starting the
## Debian prometheus service; one already present is left as it is.
promtool:
	@if ! command -v $(PROMTOOL) >/dev/null 2>&1; then \
	  echo "installing promtool (Debian package prometheus)"; \
	  policy=/usr/sbin/policy-rc.d; created=; \
	  if [ ! -e $$policy ]; then \
	    printf '#!/bin/sh\nexit 101\n' | $(DASH_SUDO) tee $$policy >/dev/null && $(DASH_SUDO) chmod 755 $$policy && created=1; \
	  fi; \
	  $(DASH_SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(DASH_SUDO) apt-get install -y -qq --no-install-recommends prometheus; \
	  rc=$$?; \
	  if [ -n "$$created" ]; then $(DASH_SUDO) rm -f $$policy; fi; \
	  [ $$rc -eq 0 ] || exit $$rc; \
	fi
	@command -v $(PROMTOOL) >/dev/null 2>&1 || { echo "dashboards.mk: $(PROMTOOL) missing after install" >&2; exit 1; }

check-dashboards: promtool
	$(PROMTOOL) check rules $(DASHBOARDS_DIR)/prometheus/alerts.yml
	$(PROMTOOL) check config $(DASHBOARDS_DIR)/prometheus/prometheus.yml

ifneq ($(firstword $(MAKEFILE_LIST)),$(DASH_MK_FILE))
.DEFAULT_GOAL := $(DASH_SAVED_DEFAULT_GOAL)
endif
