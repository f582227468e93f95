#!/bin/sh
# curl as far as the k3s recipe's claim script uses it (-fsS, -X, -H, -d, the URL), over busybox
# wget, which fails on an HTTP error status as curl -f does.
h1=; h2=; data=; post=; url=
while [ $# -gt 0 ]; do
  case "$1" in
    -X) post=1; shift ;;
    -H) if [ -z "$h1" ]; then h1=$2; else h2=$2; fi; shift ;;
    -d) data=$2; post=1; shift ;;
    -*) ;;
    *) url=$1 ;;
  esac
  shift
done
# Busybox's own wget -T crashes (Debian 12's busybox-static): timeout bounds it instead.
set -- -q -O -
[ -n "$h1" ] && set -- "$@" --header "$h1"
[ -n "$h2" ] && set -- "$@" --header "$h2"
[ -n "$post" ] && set -- "$@" --post-data "$data"
exec timeout 10 wget "$@" "$url"
