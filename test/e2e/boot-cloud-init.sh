#!/bin/bash
# Three machines with the cloud-init profile (k3s recipe) boot through Genesis at once, each with
# SeaBIOS + iPXE on its own QEMU user network, inside a private network namespace (unshare -n):
# the guests' 10.0.2.2 is this namespace's loopback, so nothing leaves the box.
# usage: boot-cloud-init.sh <workdir> <mac> <mac> <mac>
#   <workdir>/assets/k3s/amd64 holds the stand-in kernel and initrd, <workdir>/profiles the
#   profile; Genesis's data dir, its log and one serial log per machine (serial-<n>.log) go there.
set -u
W=$1; shift
if [ -z "${IN_NS:-}" ]; then exec env IN_NS=1 unshare -n "$0" "$W" "$@"; fi
ip link set lo up
TOKEN=e2e-token-0123456789abcdef
GENESIS_DATA_DIR=$W/data GENESIS_ASSETS_DIR=$W/assets GENESIS_ADVERTISE_ADDR=10.0.2.2 GENESIS_HTTP_HOST=127.0.0.1 \
GENESIS_HTTP_PORT=8080 GENESIS_TFTP_ENABLED=false GENESIS_API_TOKEN=$TOKEN GENESIS_IPXE_RETRY_SECONDS=1 \
GENESIS_LOG_FORMAT=json GENESIS_CLUSTER_NAME=k3s-lab GENESIS_PROFILES_DIR=$W/profiles GENESIS_PROFILES_DEFAULT=k3s \
  node "$(dirname "$0")/../../bin/genesis.js" serve > "$W/genesis.log" 2>&1 &
GP=$!
# The VMs too, through their timeouts (which pass the signal on): an interrupted run would leave them.
trap 'kill $GP ${PIDS:-} 2>/dev/null' EXIT
for i in $(seq 100); do curl -sf http://127.0.0.1:8080/healthz >/dev/null && break; sleep 0.1; done
# The operator registers the three as control planes before they are switched on.
n=0
for MAC in "$@"; do
  n=$((n + 1))
  curl -sS -o /dev/null -w '%{http_code}\n' -X PUT -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d '{"role":"controlplane","hostname":"k3s-'$n'"}' "http://127.0.0.1:8080/api/v1/nodes/$MAC" >> "$W/assign.status"
done
# Then all three are switched on together.
n=0
PIDS=
for MAC in "$@"; do
  n=$((n + 1))
  timeout 200 qemu-system-x86_64 -accel tcg -m 512 -nodefaults -display none -no-reboot -machine pc,graphics=off \
    -serial file:"$W/serial-$n.log" -monitor none \
    -netdev user,id=n0,bootfile=http://10.0.2.2:8080/boot.ipxe \
    -device virtio-net-pci,netdev=n0,mac=$MAC,bootindex=1 -boot n 2>"$W/qemu-$n.err" &
  PIDS="$PIDS $!"
done
for P in $PIDS; do wait $P; echo "qemu exit $?" >> "$W/qemu.status"; done
curl -sf -H "authorization: Bearer $TOKEN" http://127.0.0.1:8080/api/v1/cluster > "$W/cluster.json"
