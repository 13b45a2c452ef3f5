#!/usr/bin/env bash
# Install what PVC needs on this machine: Debian packages (only those missing), the
# project venv at .venv (Debian's python3 with system site-packages, for python3-rados,
# python3-rbd and python3-libvirt), and the package itself in editable mode.
# Safe to re-run: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # state: ZooKeeper and the logging jars it needs to say anything
  zookeeper liblog4j1.2-java libslf4j-java default-jre-headless
  # lab: namespaces, links, processes; openssl makes test certificates
  iproute2 util-linux procps openssl
  # VMs: libvirt + QEMU (guests run under TCG in the lab), Debian's libvirt bindings
  libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils python3-libvirt busybox-static
  # certificates for libvirt TLS between nodes (pvc.hypervisor.pki)
  python3-cryptography
  # QEMU's and qemu-img's rbd driver (VM disks on Ceph, image uploads)
  qemu-block-extra
  # storage: Ceph (mon, mgr, file-backed OSDs), its CLI and Debian's librados/librbd bindings
  ceph-mon ceph-osd ceph-mgr ceph-common python3-rados python3-rbd jq uuid-runtime
  # client networks: firewall, DHCP/DNS per network, BGP EVPN, the DNS aggregator and its database
  nftables dnsmasq-base frr pdns-server pdns-backend-pgsql postgresql
  # fencing: ipmitool on every node; the lab's BMCs are OpenIPMI's ipmi_sim
  ipmitool openipmi
  # provisioner: Debian installs without root (debootstrap script): mmdebstrap in a user namespace
  mmdebstrap genext2fs uidmap e2fsprogs
  # python
  python3-venv python3-dev
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
stamp=.venv/.pvc-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  echo "setup: installing pvc and its pinned dependencies into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi

# the unprivileged account pvcapid runs as (api.user / api.group default to pvcapi)
if ! getent group pvcapi >/dev/null; then
  echo "setup: creating system group pvcapi"
  groupadd --system pvcapi
fi
if ! getent passwd pvcapi >/dev/null; then
  echo "setup: creating system user pvcapi"
  useradd --system --gid pvcapi --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin pvcapi
fi
# the unprivileged account the provisioner's install scripts run as
if ! getent passwd pvcprov >/dev/null; then
  echo "setup: creating system user pvcprov"
  useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin pvcprov
fi
# subordinate IDs for pvcprov: mmdebstrap --mode=unshare maps them in its user namespace
for file in /etc/subuid /etc/subgid; do
  if ! grep -q '^pvcprov:' "$file" 2>/dev/null; then
    start=$(awk -F: 'BEGIN { end = 100000 } { if ($2 + $3 > end) end = $2 + $3 } END { print end }' "$file" 2>/dev/null || echo 100000)
    echo "setup: giving pvcprov subordinate IDs $start-$((start + 65535)) in $file"
    echo "pvcprov:$start:65536" >> "$file"
  fi
done
