#!/bin/sh
# The arm64 stand-in for Talos in the U-Boot/AAVMF boots: Debian's arm64 kernel (apt-get download
# of the arm64 package, never installed; its vmlinuz is an uncompressed Image) and a static arm64
# busybox initramfs whose /init takes DHCP, fetches talos.config= as Talos would (or, with
# ds=nocloud;s=, plays cloud-init: standin-cloud-init.sh), prints what it did (STANDIN: lines) on
# the serial console and powers off.
# Also Debian's signed arm64 network GRUB (grub-efi-arm64-signed), the first binary of arm64 UEFI
# machines when there is no arm64 iPXE: grubnetaa64.efi.
# usage: build-standin-arm64.sh <out-dir>   (writes vmlinuz, initramfs.xz and grubnetaa64.efi; reuses a previous build)
set -eu
OUT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
[ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initramfs.xz" ] && [ -s "$OUT/grubnetaa64.efi" ] && exit 0
WORK=$OUT/build
mkdir -p "$WORK"
cd "$WORK"
# Package lists for arm64 too (downloads only; nothing arm64 is installed).
if ! grep -qx arm64 /var/lib/dpkg/arch 2>/dev/null && [ "$(dpkg --print-architecture)" != arm64 ]; then dpkg --add-architecture arm64; fi
kpkg() { apt-cache depends linux-image-arm64:arm64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}'; }
KPKG=$(kpkg)
[ -n "$KPKG" ] || { apt-get update -qq; KPKG=$(kpkg); }
ls linux-image-*_arm64.deb >/dev/null 2>&1 || apt-get download "$KPKG" >/dev/null 2>&1 || apt-get download "$KPKG"
ls busybox-static_*_arm64.deb >/dev/null 2>&1 || apt-get download busybox-static:arm64 >/dev/null 2>&1 || apt-get download busybox-static:arm64
ls grub-efi-arm64-signed_*_arm64.deb >/dev/null 2>&1 || apt-get download grub-efi-arm64-signed:arm64 >/dev/null 2>&1 || apt-get download grub-efi-arm64-signed:arm64
rm -rf grub && mkdir grub && dpkg-deb -x grub-efi-arm64-signed_*_arm64.deb grub
cp grub/usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed "$OUT/grubnetaa64.efi"
rm -rf kpkg bb root && mkdir -p kpkg bb
dpkg-deb --fsys-tarfile linux-image-*_arm64.deb | tar -x -C kpkg --wildcards './boot/vmlinuz-*' \
  './lib/modules/*/kernel/drivers/virtio/*' './lib/modules/*/kernel/net/core/failover.ko' \
  './lib/modules/*/kernel/drivers/net/net_failover.ko' './lib/modules/*/kernel/drivers/net/virtio_net.ko'
dpkg-deb -x busybox-static_*_arm64.deb bb
KVER=$(ls kpkg/lib/modules | head -1)
mkdir -p root/bin root/proc root/sys root/dev root/tmp root/lib/modules
cp bb/bin/busybox root/bin/busybox
# The arm64 busybox cannot run here to list its applets: link the ones /init uses.
for a in sh mount insmod ip udhcpc cat sleep poweroff echo wget sha256sum cut sed head tail tr timeout awk grep mkdir chmod mv printf; do ln -s busybox "root/bin/$a"; done
# The cloud-init part, shared with the amd64 stand-in: with ds=nocloud;s=<url> it plays cloud-init.
cp "$HERE/standin-curl.sh" root/bin/curl
cp "$HERE/standin-cloud-init.sh" root/cloud-init.sh
chmod +x root/bin/curl root/cloud-init.sh
K=kpkg/lib/modules/$KVER/kernel
for m in drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci \
         drivers/virtio/virtio_mmio net/core/failover drivers/net/net_failover drivers/net/virtio_net; do
  [ -e "$K/$m.ko" ] && cp "$K/$m.ko" root/lib/modules/
done
cat > root/dhcp.sh <<'S'
#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew) ip addr add "$ip/${mask:-24}" dev "$interface" ;;
esac
exit 0
S
cat > root/init <<'S'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_mmio failover net_failover virtio_net; do
  [ -e /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
done
echo "STANDIN: cmdline $(cat /proc/cmdline)"
url=
ds=
for w in $(cat /proc/cmdline); do case "$w" in talos.config=*) url=${w#talos.config=} ;; "ds=nocloud;s="*) ds=${w#ds=nocloud;s=} ;; esac; done
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
echo "STANDIN: done"
poweroff -f
S
chmod +x root/init root/dhcp.sh
# The host busybox (x86) packs it. gzip, though named .xz like Talos's: the kernel tells compressions apart by their magic.
(cd root && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$OUT/initramfs.xz.tmp"
cp "kpkg/boot/vmlinuz-$KVER" "$OUT/vmlinuz.tmp"
mv "$OUT/initramfs.xz.tmp" "$OUT/initramfs.xz"
mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
rm -rf "$WORK"
