#!/bin/sh
# The stand-in's cloud-init: the NoCloud datasource at $1, then the k3s recipe's claim and phone_home.
ds=$1
if ! timeout 10 wget -q -O /tmp/meta-data "${ds}meta-data" || ! timeout 10 wget -q -O /tmp/user-data "${ds}user-data"; then
  echo "STANDIN: datasource fetch failed"; exit 0
fi
iid=$(sed -n 's/^instance-id: *//p' /tmp/meta-data)
host=$(sed -n 's/^local-hostname: *//p' /tmp/meta-data)
echo "STANDIN: instance-id $iid hostname $host"
head -1 /tmp/user-data | grep -qx '#cloud-config' && echo "STANDIN: user-data is #cloud-config"
# write_files, as cloud-init writes them: each item's block-scalar content to its path.
mkdir -p /etc/genesis /etc/rancher/k3s /usr/local/sbin
awk '
  /^  - path: / { path = $3; next }
  /^    content: \|/ { if (path != "") { cap = 1; out = path; printf "" > out }; next }
  cap { if ($0 ~ /^      / || $0 == "") { line = $0; sub(/^      /, "", line); print line > out; next } cap = 0; close(out); path = "" }
' /tmp/user-data
chmod 755 /usr/local/sbin/genesis-k3s-claim 2>/dev/null
if [ -x /usr/local/sbin/genesis-k3s-claim ] && timeout 60 /usr/local/sbin/genesis-k3s-claim > /tmp/claim.out 2>&1; then
  echo "STANDIN: claim $(cat /etc/rancher/k3s/config.yaml.d/50-genesis-claim.yaml)"
else
  echo "STANDIN: claim failed: $(tail -n 3 /tmp/claim.out 2>/dev/null | tr '\n' ' ')"
fi
home=$(awk '/^phone_home:/ { p = 1; next } p && /^  url: / { print $2; exit }' /tmp/user-data)
if timeout 10 wget -q -O /dev/null --post-data "instance_id=$iid&hostname=$host" "$home"; then
  echo "STANDIN: phoned home"
else
  echo "STANDIN: phone home failed"
fi
