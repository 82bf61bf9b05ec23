#!/usr/bin/env bash
# Runs a command on this CPU as if its data caches had other sizes: in a private mount
# namespace, sysfs's cache descriptions (/sys/devices/system/cpu/cpu*/cache/index*, which
# is where libraries such as the gemm crate size their blocking) are replaced by these.
#
#   scripts/with-cache-sizes.sh L1 L1_WAYS L2 L2_WAYS L3 L3_WAYS -- COMMAND [ARGS]...
#   scripts/with-cache-sizes.sh 48K 12 2048K 16 105M 15 -- tarjama translate doc.txt --out out
#
# Needs util-linux's unshare; as a user other than root, unprivileged user namespaces.
set -euo pipefail
if [ $# -lt 8 ] || [ "$7" != -- ]; then
    echo "usage: $0 L1 L1_WAYS L2 L2_WAYS L3 L3_WAYS -- COMMAND [ARGS]..." >&2
    exit 2
fi
sizes=("$1" "$2" "$3" "$4" "$5" "$6")
shift 7
as_root=(--mount)
[ "$(id -u)" -eq 0 ] || as_root=(--map-root-user --mount)
exec unshare "${as_root[@]}" bash -c '
set -euo pipefail
l1=$1 l1_ways=$2 l2=$3 l2_ways=$4 l3=$5 l3_ways=$6
shift 6
fake=$(mktemp -d)
for index in /sys/devices/system/cpu/cpu[0-9]*/cache/index[0-9]*; do
    case "$(cat "$index/level")-$(cat "$index/type")" in
        1-Data) size=$l1 ways=$l1_ways ;;
        2-*) size=$l2 ways=$l2_ways ;;
        3-*) size=$l3 ways=$l3_ways ;;
        *) continue ;;
    esac
    name=$fake/$(echo "$index" | tr / _)
    echo "$size" >"$name.size"
    echo "$ways" >"$name.ways"
    mount --bind "$name.size" "$index/size"
    mount --bind "$name.ways" "$index/ways_of_associativity"
done
exec "$@"
' with-cache-sizes "${sizes[@]}" "$@"
