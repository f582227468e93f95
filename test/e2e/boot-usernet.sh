#!/bin/bash
# One machine boots through Genesis on QEMU user networking, inside a private network namespace
# (unshare -n): the guest's 10.0.2.2 is this namespace's loopback, so nothing leaves the box.
# usage: boot-usernet.sh <bios|uefi> <workdir> <mac> [fleet file]
#   <workdir>/assets holds the stand-in kernel; Genesis's data dir, its log and the serial log go there too.
# The machine first boots unassigned (it must wait), this script then assigns it a role through
# the API as an operator would, and the machine boots the kernel on its next request. With a
# fleet file, Genesis runs with fleet.path set to it and nobody calls the API: the machine boots
# as its entry says from its first request.
set -u
FW=$1; W=$2; MAC=$3; FLEET=${4:-}
if [ -n "$FLEET" ]; then export GENESIS_FLEET_PATH=$FLEET; fi
if [ -z "${IN_NS:-}" ]; then exec env IN_NS=1 unshare -n "$0" "$@"; fi
ip link set lo up
TOKEN=e2e-token-0123456789abcdef
GENESIS_DATA_DIR=$W/data GENESIS_ASSETS_DIR=$W/assets GENESIS_ADVERTISE_ADDR=10.0.2.2 GENESIS_HTTP_HOST=127.0.0.1 \
GENESIS_HTTP_PORT=8080 GENESIS_TFTP_ENABLED=false GENESIS_API_TOKEN=$TOKEN GENESIS_IPXE_RETRY_SECONDS=1 \
GENESIS_LOG_FORMAT=json GENESIS_TALOS_EXTRA_KERNEL_ARGS="console=ttyS0 panic=1" GENESIS_CLUSTER_ENDPOINT=https://192.0.2.10:6443 \
  node "$(dirname "$0")/../../bin/genesis.js" serve > "$W/genesis.log" 2>&1 &
GP=$!
# The VM too, through its timeout (which passes the signal on): an interrupted run would leave it.
trap 'kill $GP ${QP:-} 2>/dev/null' EXIT
for i in $(seq 100); do curl -sf http://127.0.0.1:8080/healthz >/dev/null && break; sleep 0.1; done
FWOPT="-machine pc,graphics=off"
[ "$FW" = uefi ] && FWOPT="-bios /usr/share/ovmf/OVMF.fd -fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=n"
timeout 150 qemu-system-x86_64 -accel tcg -m 512 -nodefaults -display none -no-reboot $FWOPT \
  -serial file:"$W/serial.log" -monitor none \
  -netdev user,id=n0,bootfile=http://10.0.2.2:8080/boot.ipxe \
  -device virtio-net-pci,netdev=n0,mac=$MAC,bootindex=1 -boot n 2>"$W/qemu.err" &
QP=$!
# The operator: wait until the machine has shown up and been told to wait, then assign it.
for i in $(seq 1200); do
  [ -n "$FLEET" ] && break
  grep -aq 'has no role yet' "$W/serial.log" 2>/dev/null && break
  kill -0 $QP 2>/dev/null || break
  sleep 0.1
done
[ -n "$FLEET" ] && echo fleet > "$W/assign.status"
[ -z "$FLEET" ] && curl -sS -o "$W/assign.json" -w '%{http_code}\n' -X PUT -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d '{"role":"worker","hostname":"e2e-'"$FW"'"}' "http://127.0.0.1:8080/api/v1/nodes/$MAC" > "$W/assign.status"
wait $QP
echo "qemu exit $?" > "$W/qemu.status"
# The kernel log the machine sent before powering off: give Genesis a moment to store it.
for i in $(seq 50); do
  curl -sf -H "authorization: Bearer $TOKEN" "http://127.0.0.1:8080/api/v1/nodes/$MAC/logs?limit=1" | grep -q '"msg"' && break
  sleep 0.1
done
