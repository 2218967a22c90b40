#!/usr/bin/env bash
# Install Prometheus and Alertmanager from Debian's packages if they are missing (the export
# integration test runs promtool, prometheus and alertmanager). Services are not started: the
# tests start their own processes on free ports and stop them.
set -eu
have() { command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 \
  && { command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1; }; }
if have; then
  echo "prometheus: $(prometheus --version 2>&1 | head -1)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "prometheus is missing; install it with: sudo apt-get install prometheus prometheus-alertmanager" >&2
  exit 1
fi
echo "prometheus: installing from Debian's packages"
apt-get update -qq
# policy-rc.d keeps the packages' own services from starting on this machine
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.headwater
chmod +x /usr/sbin/policy-rc.d.headwater
if [ ! -e /usr/sbin/policy-rc.d ]; then cp /usr/sbin/policy-rc.d.headwater /usr/sbin/policy-rc.d; trap 'rm -f /usr/sbin/policy-rc.d' EXIT; fi
rm -f /usr/sbin/policy-rc.d.headwater
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  prometheus prometheus-alertmanager >/dev/null
prometheus --version 2>&1 | head -1
