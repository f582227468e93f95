#!/bin/bash
# An arm64 board with U-Boot (QEMU virt, Debian's u-boot-qemu qemu_arm64) boots through Genesis on
# a private L2 segment (needs root). dnsmasq plays the LAN's router and names Genesis's
# boot.scr.uimg and next-server (U-Boot ignores proxyDHCP offers; docs/router-recipes.md "U-Boot boards").
# Genesis's proxyDHCP also runs, to show it learns U-Boot's requests without answering them.
# usage: boot-uboot.sh <workdir>      <workdir>/assets holds the arm64 stand-in; logs go to <workdir>
# The board first waits for a role (its script loops); the script assigns one through the API
# once Genesis has recorded it; the board then boots the stand-in, which fetches its config.
# AGAIN=1: afterwards mark it installed and boot it again: U-Boot must leave for its next target.
# The stand-in prints on the last console= (Talos names tty0 last on arm64): console=ttyAMA0 is added.
# LOSS=N: drop N% of frames each way on the tap (nftables netdev rules).
# ASSIGN='{"role":"controlplane","profile":"k3s"}': what the operator sets (default: a control
# plane); profiles, if any, in <workdir>/profiles.
# FW=aavmf-pxe | aavmf-http: UEFI arm64 (Debian's AAVMF) instead, through Genesis's proxyDHCP
# (dnsmasq hands out addresses only): PXE → TFTP arm64-efi/snponly.efi, or HTTP Boot → the same
# file over HTTP. Whatever <workdir>/assets/ipxe/arm64-efi/snponly.efi is gets started; the run
# ends when the serial log shows the EFI stub of a kernel standing in for it.
# FW=aavmf-grub: UEFI arm64 with no arm64 iPXE: <workdir>/assets/grub/grubnetaa64.efi (Debian's
# signed network GRUB) is handed out, and the board goes the U-Boot flow's way (wait, assign,
# install, AGAIN) through Genesis's GRUB configs. The router names the file and next-server, as
# docs/router-recipes.md says (GRUB 2.06 reads the router's answer, not the proxy's).
set -u
W=$1
NS=genesis-uboot-$$
X="ip netns exec $NS"
TOKEN=e2e-token-0123456789abcdef
MAC=52:54:00:a6:00:01
API=http://192.0.2.1:8080/api/v1
PIDS=()
cleanup() {
  # What Genesis counted (TFTP outcomes and retransmissions), for the test to read as API state.
  $X curl -s -m 5 http://192.0.2.1:8080/metrics > "$W/metrics.txt" 2>/dev/null
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in $(ip netns pids $NS 2>/dev/null); do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  ip netns del $NS 2>/dev/null
}
trap cleanup EXIT

ip netns add $NS || exit 1
$X ip link set lo up
$X ip link add br0 type bridge
$X ip link set br0 type bridge forward_delay 0 stp_state 0
$X ip addr add 192.0.2.1/25 dev br0
$X ip link set br0 up
$X ip tuntap add dev tap0 mode tap
$X ip link set tap0 master br0 up
if [ -n "${LOSS:-}" ]; then
  $X nft -f - <<N || exit 1
table netdev loss0 {
  chain in  { type filter hook ingress device "tap0" priority 0; numgen random mod 100 < $LOSS counter drop; }
  chain out { type filter hook egress  device "tap0" priority 0; numgen random mod 100 < $LOSS counter drop; }
}
N
fi

FW=${FW:-uboot}
ROUTER=()
# The dnsmasq recipe (docs/router-recipes.md) for U-Boot boards, as written there.
[ "$FW" = uboot ] && ROUTER=(--dhcp-vendorclass=set:uboot,U-Boot --dhcp-boot=tag:uboot,boot.scr.uimg,,192.0.2.1)
# The dnsmasq recipe (docs/router-recipes.md) for arm64 UEFI through GRUB, as written there.
[ "$FW" = aavmf-grub ] && ROUTER=(--dhcp-match=set:arm64efi,option:client-arch,11 --dhcp-boot=tag:arm64efi,grub/grubnetaa64.efi,,192.0.2.1)
$X dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --interface=br0 --bind-interfaces \
  --dhcp-range=192.0.2.100,192.0.2.126,255.255.255.128,10m --no-ping "${ROUTER[@]}" \
  --dhcp-leasefile="$W/leases" --log-dhcp --log-facility="$W/dnsmasq.log" &
PIDS+=($!)

$X env GENESIS_DATA_DIR="$W/data" GENESIS_ASSETS_DIR="$W/assets" GENESIS_ADVERTISE_ADDR=192.0.2.1 \
  GENESIS_HTTP_HOST=192.0.2.1 GENESIS_HTTP_PORT=8080 GENESIS_TFTP_HOST=192.0.2.1 GENESIS_TFTP_PORT=69 \
  GENESIS_DHCP_PROXY=true GENESIS_API_TOKEN=$TOKEN GENESIS_LOG_FORMAT=json GENESIS_LOG_LEVEL=debug \
  GENESIS_TALOS_EXTRA_KERNEL_ARGS="console=ttyAMA0 panic=1" GENESIS_CLUSTER_ENDPOINT=https://192.0.2.10:6443 \
  GENESIS_BOOTSTRAP_ENABLED=false GENESIS_AUTO_ASSIGN_ENABLED=false GENESIS_IPXE_RETRY_SECONDS=2 GENESIS_PROFILES_DIR="$W/profiles" \
  node "$(dirname "$0")/../../bin/genesis.js" serve > "$W/genesis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do $X curl -sf http://192.0.2.1:8080/healthz >/dev/null && break; sleep 0.1; done

vm() { # $1 serial log, $2 timeout
  local fw=(-bios /usr/lib/u-boot/qemu_arm64/u-boot.bin)
  if [ "$FW" = aavmf-grub ]; then
    [ -e "$W/vars.fd" ] || cp /usr/share/AAVMF/AAVMF_VARS.fd "$W/vars.fd"
    fw=(-drive if=pflash,format=raw,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd -drive if=pflash,format=raw,file="$W/vars.fd"
        -fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=n)
  fi
  $X timeout "$2" qemu-system-aarch64 -M virt -cpu cortex-a57 -m 1024 -nodefaults -display none -no-reboot \
    "${fw[@]}" -serial file:"$1" -monitor none \
    -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-device,netdev=n0,mac=$MAC 2>>"$W/qemu.err"
}

if [ "$FW" = aavmf-pxe ] || [ "$FW" = aavmf-http ]; then
  cp /usr/share/AAVMF/AAVMF_VARS.fd "$W/vars.fd"
  KNOBS=(-fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=n)
  [ "$FW" = aavmf-http ] && KNOBS+=(-fw_cfg name=opt/org.tianocore/IPv4PXESupport,string=n)
  $X timeout 240 qemu-system-aarch64 -M virt -cpu cortex-a57 -m 1024 -nodefaults -display none -no-reboot \
    -drive if=pflash,format=raw,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd -drive if=pflash,format=raw,file="$W/vars.fd" \
    "${KNOBS[@]}" -serial file:"$W/serial-$FW.log" -monitor none \
    -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-device,netdev=n0,mac=$MAC 2>>"$W/qemu.err" &
  VM=$!
  for _ in $(seq 2400); do
    grep -aq 'EFI stub: Booting Linux Kernel' "$W/serial-$FW.log" 2>/dev/null && break
    kill -0 $VM 2>/dev/null || break
    sleep 0.1
  done
  # The stand-in has no initramfs and only has to start: end it.
  kill $VM 2>/dev/null
  wait $VM
  exit 0
fi

vm "$W/serial-uboot.log" 400 &
VM=$!
# The board is recorded from its first machine-script request; then the operator assigns it.
for _ in $(seq 1200); do
  [ "$($X curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $TOKEN" "$API/nodes/$MAC")" = 200 ] && break
  kill -0 $VM 2>/dev/null || break
  sleep 0.1
done
# Let it ask once more while unassigned, so the waiting path is exercised for real.
for _ in $(seq 100); do [ "$(grep -ac 'no role yet' "$W/serial-uboot.log")" -ge 2 ] && break; sleep 0.1; done
BODY='{"role":"controlplane"}'
[ -n "${ASSIGN:-}" ] && BODY=$ASSIGN
$X curl -sS -o /dev/null -w '%{http_code}\n' -X PATCH -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d "$BODY" "$API/nodes/$MAC" > "$W/assign.status"
wait $VM
echo "qemu exit $?" > "$W/qemu.status"
[ -n "${LOSS:-}" ] && $X nft list ruleset > "$W/nft.txt"

[ "${AGAIN:-}" = 1 ] || exit 0
$X curl -sS -o /dev/null -w '%{http_code}\n' -X POST -H "authorization: Bearer $TOKEN" "$API/nodes/$MAC/installed" > "$W/installed.status"
vm "$W/serial-uboot-again.log" 120 &
AGAIN_VM=$!
# After Genesis's answer U-Boot has nothing else to boot here and stops at its prompt; AAVMF goes
# on to its next boot option (its setup front page here).
for _ in $(seq 1200); do
  # U-Boot stops at its prompt; AAVMF, after GRUB's exit, starts its next boot option.
  grep -aq 'is installed' "$W/serial-uboot-again.log" 2>/dev/null && grep -aEq '^=> |starting Boot0000' "$W/serial-uboot-again.log" && break
  kill -0 $AGAIN_VM 2>/dev/null || break
  sleep 0.1
done
kill $AGAIN_VM 2>/dev/null
wait $AGAIN_VM
exit 0
