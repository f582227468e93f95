#!/bin/bash
# Machines PXE-boot on a real L2 segment with Genesis's proxyDHCP (needs root). A private network
# namespace holds a bridge (192.0.2.1/25, TEST-NET-1, no route out) and one tap per VM; dnsmasq
# is the LAN's DHCP server and hands out addresses only; Genesis (proxyDHCP, TFTP, HTTP) supplies
# the boot. Each VM is pre-assigned through the API and boots through to the stand-in kernel.
# usage: boot-l2.sh <workdir> <fw>...    fw: bios | uefi | uefi-native | uefi-http
#   <workdir>/assets holds the stand-in kernel and iPXE binaries; logs go to <workdir>.
# Roles come from Genesis's auto-assign policy (the first two machines become control planes).
# Environment:
#   MODE=proxy   (default) dnsmasq hands out addresses only; Genesis's proxyDHCP supplies the boot
#   MODE=router  dnsmasq plays a router that sets next-server and a file name, with the iPXE
#                user-class rule (docs/dhcp.md, way A); Genesis's proxyDHCP is off
#   MODE=router-plain  a router that names one file per architecture and has no user-class
#                rule: iPXE loads iPXE forever. The VMs are stopped once Genesis warns about it.
#   LOSS=N       drop N% of frames each way on every tap (nftables netdev rules), but the DHCP
#                servers' replies: a client's own frames are dropped (so Genesis and dnsmasq see
#                retransmissions), TFTP and HTTP both ways. iPXE's ROM waits one 2 s window for a
#                proxy offer and boots without one (both of Genesis's offers dropped: "Nothing to
#                boot"), and the stand-in's udhcpc gave up after two lost ACKs: outcomes of the
#                clients' retry policies, seen in CI, not of Genesis's.
#   FOREIGN=1    a second LAN (br1, 192.0.2.129/25, its own dnsmasq) with one BIOS VM: Genesis hears
#                its DISCOVERs but must never answer onto br1 (nft counts Genesis's replies per tap)
#   AGAIN=1      afterwards mark the first VM installed; it boots once more and must be sent to
#                its local disk (serial log serial-<fw>-again.log)
set -u
W=$1; shift; FWS=("$@")
NS=genesis-e2e-$$
X="ip netns exec $NS"
TOKEN=e2e-token-0123456789abcdef
PIDS=()
cleanup() {
  # What Genesis counted (TFTP outcomes, DHCP answers), for the test to read as API state.
  $X curl -s -m 5 http://192.0.2.1:8080/metrics > "$W/metrics.txt" 2>/dev/null
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  # The VMs too (an interrupted run leaves them otherwise, under their timeout, for minutes).
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
# An IPv6 documentation prefix so dnsmasq can send RAs: iPXE otherwise waits ~14 s for IPv6.
$X ip -6 addr add 2001:db8::1/64 dev br0 nodad
$X ip link set br0 up
for i in "${!FWS[@]}"; do
  $X ip tuntap add dev tap$i mode tap
  $X ip link set tap$i master br0 up
done

if [ "${FOREIGN:-}" = 1 ]; then
  $X ip link add br1 type bridge
  $X ip link set br1 type bridge forward_delay 0 stp_state 0
  $X ip addr add 192.0.2.129/25 dev br1
  $X ip -6 addr add 2001:db8:1::1/64 dev br1 nodad
  $X ip link set br1 up
  $X ip tuntap add dev tapf mode tap
  $X ip link set tapf master br1 up
  $X dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --interface=br1 --bind-interfaces \
    --dhcp-range=192.0.2.200,192.0.2.250,255.255.255.128,10m --no-ping \
    --enable-ra --dhcp-range=::,constructor:br1,ra-only \
    --dhcp-leasefile="$W/leases-foreign" --log-dhcp --log-facility="$W/dnsmasq-foreign.log" &
  PIDS+=($!)
  # Count DHCP replies from Genesis's address leaving towards each LAN.
  $X nft -f - <<N || exit 1
table netdev watch0 {
  chain out { type filter hook egress device "tap0" priority 0; ip saddr 192.0.2.1 udp sport 67 counter; }
}
table netdev watchf {
  chain out { type filter hook egress device "tapf" priority 0; ip saddr 192.0.2.1 udp sport 67 counter; }
}
N
fi

if [ -n "${LOSS:-}" ]; then
  for i in "${!FWS[@]}"; do
    $X nft -f - <<N || exit 1
table netdev loss$i {
  chain in  { type filter hook ingress device "tap$i" priority 0; numgen random mod 100 < $LOSS counter drop; }
  chain out { type filter hook egress  device "tap$i" priority 0; udp sport 67 counter accept; numgen random mod 100 < $LOSS counter drop; }
}
N
  done
fi

# The LAN's DHCP server. proxy mode: addresses only, and --bind-interfaces lets Genesis share
# port 67. router mode: it also names the boot file, as a router configured per docs/dhcp.md way A does.
BOOT=()
PROXY=true
if [ "${MODE:-proxy}" = router-plain ]; then
  PROXY=false
  BOOT=(--dhcp-match=set:efi64,option:client-arch,7 --dhcp-match=set:efi64,option:client-arch,9
    "--dhcp-boot=tag:efi64,snponly.efi,,192.0.2.1"
    "--dhcp-boot=tag:!efi64,undionly.kpxe,,192.0.2.1")
elif [ "${MODE:-proxy}" = router ]; then
  PROXY=false
  BOOT=(--dhcp-userclass=set:ipxe,iPXE
    --dhcp-match=set:efi64,option:client-arch,7 --dhcp-match=set:efi64,option:client-arch,9
    "--dhcp-boot=tag:ipxe,http://192.0.2.1:8080/boot.ipxe"
    "--dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi,,192.0.2.1"
    "--dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe,,192.0.2.1")
fi
$X dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --interface=br0 --bind-interfaces \
  --dhcp-range=192.0.2.100,192.0.2.126,255.255.255.128,10m --no-ping \
  --enable-ra --dhcp-range=::,constructor:br0,ra-only \
  --dhcp-leasefile="$W/leases" --log-dhcp --log-facility="$W/dnsmasq.log" "${BOOT[@]}" &
PIDS+=($!)

$X env GENESIS_DATA_DIR="$W/data" GENESIS_ASSETS_DIR="$W/assets" GENESIS_ADVERTISE_ADDR=192.0.2.1 \
  GENESIS_HTTP_HOST=192.0.2.1 GENESIS_HTTP_PORT=8080 GENESIS_TFTP_HOST=192.0.2.1 GENESIS_TFTP_PORT=69 \
  GENESIS_DHCP_PROXY=$PROXY GENESIS_API_TOKEN=$TOKEN GENESIS_LOG_FORMAT=json GENESIS_LOG_LEVEL=debug \
  GENESIS_TALOS_EXTRA_KERNEL_ARGS="console=ttyS0 panic=1" GENESIS_CLUSTER_ENDPOINT=https://192.0.2.10:6443 \
  GENESIS_BOOTSTRAP_ENABLED=false GENESIS_AUTO_ASSIGN_ENABLED=true GENESIS_AUTO_ASSIGN_CONTROLPLANES=2 \
  node "$(dirname "$0")/../../bin/genesis.js" serve > "$W/genesis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do $X curl -sf http://192.0.2.1:8080/healthz >/dev/null && break; sleep 0.1; done

# End the VMs of this run only (those inside our namespace).
stop_vms() {
  for p in $(ip netns pids $NS); do
    [ "$(cat /proc/$p/comm 2>/dev/null)" = qemu-system-x86 ] && kill "$p" 2>/dev/null
  done
}

# One VM per firmware on its own tap; $1 firmware, $2 index, $3 serial log, $4 timeout.
vm() {
  local FW=$1 I=$2 LOG=$3 TMO=$4 ROM="" FWOPT="-machine pc,graphics=off"
  local MAC; MAC=$(printf '52:54:00:e2:01:%02x' $((I + 1)))
  local OVMF="-bios /usr/share/ovmf/OVMF.fd"
  # OVMF knobs: skip the boot options this run does not test (each would cost ~60 s of waiting).
  local NOPXE6="-fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=n"
  local NOPXE4="-fw_cfg name=opt/org.tianocore/IPv4PXESupport,string=n"
  case $FW in
    uefi) FWOPT="$OVMF $NOPXE6" ;;
    uefi-native) FWOPT="$OVMF $NOPXE6"; ROM=",romfile=" ;;          # EDK2's own PXE: TFTP snponly.efi, then iPXE
    uefi-http) FWOPT="$OVMF $NOPXE4 $NOPXE6"; ROM=",romfile=" ;;    # EDK2 HTTP Boot: http://…/snponly.efi, then iPXE
  esac
  $X timeout "$TMO" qemu-system-x86_64 -accel tcg -m 512 -nodefaults -display none -no-reboot $FWOPT \
    -serial file:"$LOG" -monitor none \
    -netdev tap,id=n0,ifname=tap$I,script=no,downscript=no \
    -device virtio-net-pci,netdev=n0,mac=$MAC,bootindex=1$ROM -boot n 2>"$W/qemu-$FW.err"
}

VMS=()
for i in "${!FWS[@]}"; do
  vm "${FWS[$i]}" "$i" "$W/serial-${FWS[$i]}.log" 240 &
  VMS+=($!)
done
if [ "${FOREIGN:-}" = 1 ]; then
  $X timeout 240 qemu-system-x86_64 -accel tcg -m 512 -nodefaults -display none -no-reboot -machine pc,graphics=off \
    -serial file:"$W/serial-foreign.log" -monitor none \
    -netdev tap,id=n0,ifname=tapf,script=no,downscript=no \
    -device virtio-net-pci,netdev=n0,mac=52:54:00:e2:02:01,bootindex=1 -boot n 2>"$W/qemu-foreign.err" &
  FOREIGN_VM=$!
fi
if [ "${MODE:-proxy}" = router-plain ]; then
  for _ in $(seq 1800); do grep -q 'is loading iPXE again and again' "$W/genesis.log" && break; sleep 0.1; done
  stop_vms
fi
for i in "${!VMS[@]}"; do
  wait "${VMS[$i]}"
  echo "qemu exit $?" > "$W/qemu-${FWS[$i]}.status"
done
# How many frames the loss rules dropped, how many replies went to each LAN (the tests check).
{ [ -n "${LOSS:-}" ] || [ "${FOREIGN:-}" = 1 ]; } && $X nft list ruleset > "$W/nft.txt"
if [ "${FOREIGN:-}" = 1 ]; then
  stop_vms
  wait "$FOREIGN_VM"
fi

[ "${AGAIN:-}" = 1 ] || exit 0

# The first machine finished its install: the operator (or, later, Talos) marks it installed, and
# its next PXE boot must leave for the local disk. There is no disk here, so the firmware then
# finds nothing to boot and the timeout ends the VM; the serial log tells what Genesis answered.
$X curl -sS -o /dev/null -w '%{http_code}\n' -X POST -H "authorization: Bearer $TOKEN" \
  "http://192.0.2.1:8080/api/v1/nodes/52:54:00:e2:01:01/installed" > "$W/installed.status"
vm "${FWS[0]}" 0 "$W/serial-${FWS[0]}-again.log" 120 &
AGAIN=$!
for _ in $(seq 1200); do
  grep -aq 'is installed, ' "$W/serial-${FWS[0]}-again.log" 2>/dev/null && break
  kill -0 $AGAIN 2>/dev/null || break
  sleep 0.1
done
# Let the firmware act on the answer for a moment, then end the VM (nothing more to see).
sleep 2
stop_vms
wait $AGAIN
