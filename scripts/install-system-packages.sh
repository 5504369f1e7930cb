#!/usr/bin/env bash
# The Debian packages Ambit's lab, tests and benchmarks use. Idempotent; needs root.
set -euo pipefail
packages=(iproute2 nftables procps util-linux curl wrk nghttp2-client redis-server redis-tools haproxy tcpdump openssl
  python3 make g++ prometheus postgresql dnsutils etcd-server etcd-client chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing system packages: ${missing[*]}; run this script as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # The Prometheus e2e test runs its own server (own port, config and storage): the package's service,
  # started on install where systemd runs, would only scrape itself on :9090, so it is stopped.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null &&
    systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
  # Likewise etcd: the tests and `ambit up --ha` run their own members (own ports and data).
  if [[ " ${missing[*]} " == *" etcd-server "* ]] && command -v systemctl >/dev/null &&
    systemctl is-active --quiet etcd 2>/dev/null; then
    systemctl disable --now etcd >/dev/null 2>&1 || true
  fi
fi
echo "system packages present: ${packages[*]}"
