#!/bin/sh
# Build the stand-in for Talos used by the end-to-end boots: Debian's kernel (downloaded with
# apt-get download, never installed; only vmlinuz and the NIC modules extracted) and a busybox
# initramfs whose /init takes DHCP, reads talos.config= from /proc/cmdline, fetches it the way
# Talos would, sends its kernel log as Talos's JSON lines to talos.logging.kernel= (when given),
# prints what it did on the serial console and powers off.
# With ds=nocloud;s=<url> instead (the cloud-init profile), it plays cloud-init: fetches meta-data
# and user-data from the datasource, writes the user-data's write_files, runs the k3s recipe's
# claim script as written there (its curl is a shim over busybox wget: the initramfs has no curl),
# and posts phone_home's form to the phone_home URL.
# usage: build-standin.sh <out-dir>   (writes vmlinuz and initramfs.xz; reuses a previous build)
set -eu
OUT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
[ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initramfs.xz" ] && exit 0
WORK=$OUT/build
mkdir -p "$WORK"
cd "$WORK"
KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
# apt-get download needs package lists; fetch them once if this machine has none yet.
[ -n "$KPKG" ] || { apt-get update -qq; KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}'); }
ls "$KPKG"_*.deb >/dev/null 2>&1 || apt-get download "$KPKG" >/dev/null 2>&1 || { apt-get update -qq && apt-get download "$KPKG"; }
rm -rf kpkg && mkdir kpkg
dpkg-deb --fsys-tarfile "$KPKG"_*.deb | tar -x -C kpkg --wildcards './boot/vmlinuz-*' \
  './lib/modules/*/kernel/drivers/virtio/*' './lib/modules/*/kernel/net/core/failover.ko' \
  './lib/modules/*/kernel/drivers/net/net_failover.ko' './lib/modules/*/kernel/drivers/net/virtio_net.ko'
KVER=$(ls kpkg/lib/modules | head -1)
rm -rf root && mkdir -p root/bin root/proc root/sys root/dev root/tmp root/lib/modules
cp /bin/busybox root/bin/busybox
for a in $(root/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "root/bin/$a"; done
K=kpkg/lib/modules/$KVER/kernel
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev \
         drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci net/core/failover \
         drivers/net/net_failover drivers/net/virtio_net; do
  [ -e "$K/$m.ko" ] && cp "$K/$m.ko" root/lib/modules/
done
cat > root/dhcp.sh <<'S'
#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew) ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "${router:-}" ] && ip route add default via ${router%% *} dev "$interface" ;;
esac
exit 0
S
# The cloud-init part is shared with the arm64 stand-in (standin-cloud-init.sh, standin-curl.sh).
cp "$HERE/standin-curl.sh" root/bin/curl
cp "$HERE/standin-cloud-init.sh" root/cloud-init.sh
chmod +x root/bin/curl root/cloud-init.sh
cat > root/init <<'S'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net; do
  [ -e /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
done
echo "STANDIN: cmdline $(cat /proc/cmdline)"
url=
ds=
klog=
for w in $(cat /proc/cmdline); do
  case "$w" in
    talos.config=*) url=${w#talos.config=} ;;
    "ds=nocloud;s="*) ds=${w#ds=nocloud;s=} ;;
    talos.logging.kernel=tcp://*) klog=${w#talos.logging.kernel=tcp://}; klog=${klog%%/*} ;;
  esac
done
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
ip link set lo up; ip link set eth0 up
# Talos asks for a lease until it has one. One udhcpc gives up after a few lost replies (two lost
# ACKs ended a CI run's 5% loss test), so the stand-in asks again, up to six rounds.
n=0; until udhcpc -i eth0 -n -q -f -t 10 -T 1 -s /dhcp.sh >/dev/null 2>&1 || [ $n -ge 5 ]; do n=$((n+1)); done
echo "STANDIN: mac $(cat /sys/class/net/eth0/address)"
if [ -n "$ds" ]; then
  /cloud-init.sh "$ds"
elif [ -n "$url" ]; then
  if body=$(timeout 20 wget -O - "$url" 2>/tmp/err); then
    echo "STANDIN: config sha256 $(echo "$body" | sha256sum | cut -d' ' -f1)"
    echo "STANDIN: machine.type $(echo "$body" | sed -n 's/^ *type: *//p' | head -1)"
  else
    echo "STANDIN: config fetch failed: $(tail -n 2 /tmp/err | tr '\n' ' ')"
  fi
else
  echo "STANDIN: no talos.config= on the command line"
fi
if [ -n "$klog" ]; then
  # The kernel log as Talos's JSON-lines sender writes it: one object per message.
  if dmesg | tr -d '\000-\010\013-\037' | tr '\t' ' ' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' \
      -e 's/^\[ *\([0-9.]*\)\] \(.*\)$/{"msg":"\2","clock":"\1","talos-level":"info","facility":"kern"}/' \
      | grep '^{' | timeout 10 nc -w 2 "${klog%:*}" "${klog##*:}"; then
    echo "STANDIN: kernel log sent to $klog"
  else
    echo "STANDIN: kernel log to $klog failed"
  fi
fi
echo "STANDIN: done"
poweroff -f
S
chmod +x root/init root/dhcp.sh root/cloud-init.sh
(cd root && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$OUT/initramfs.xz.tmp"
cp "kpkg/boot/vmlinuz-$KVER" "$OUT/vmlinuz.tmp"
mv "$OUT/initramfs.xz.tmp" "$OUT/initramfs.xz"
mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
rm -rf "$WORK"
