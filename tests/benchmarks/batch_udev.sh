#!/bin/sh
# Where the time of gre_tunnel's 200-tunnel batch goes on a lab guest (issue 3). Runs in the guest:
#
#   tests/lab/lab --lab-dir DIR up tests/lab/topologies/solo.yml
#   tests/lab/lab --lab-dir DIR ssh solo -- sh -s VARIANT < tests/benchmarks/batch_udev.sh
#
# It times `ip -batch` of the 600 lines gre_tunnel sends for 200 new tunnels (link add; alias and
# up; address), then how long `udevadm settle` waits for udev to handle the new interfaces, then
# deletes them. VARIANT:
#   full     the module's lines, udev running
#   addonly  only the 200 `link add` lines
#   nogen    `addrgenmode none` with the alias (no IPv6 link-local addresses)
#   noudev   the module's lines with systemd-udevd stopped (started again at the end)
set -eu
variant=${1:-full}
extra=""
[ "$variant" = nogen ] && extra=" addrgenmode none"
modprobe ip_gre
i=0
while [ $i -lt 200 ]; do
    a=$((i / 250))
    b=$((i % 250 + 1))
    echo "link add name gx$i type gre remote 198.51.100.$b local 203.0.113.1 ttl 255 tos 0x00 pmtudisc"
    if [ "$variant" != addonly ]; then
        echo "link set dev gx$i$extra alias \"managed-by: linuxnet.gre\" up"
        echo "address add 10.1.$a.$b/32 dev gx$i"
    fi
    i=$((i + 1))
done >/tmp/batch.txt
udevadm settle
units="systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket"
# shellcheck disable=SC2086 # three unit names
[ "$variant" = noudev ] && systemctl stop $units
start=$(date +%s%N)
ip -batch /tmp/batch.txt
end=$(date +%s%N)
echo "$variant: ip -batch of $(wc -l </tmp/batch.txt) lines: $(((end - start) / 1000000)) ms"
# shellcheck disable=SC2086
[ "$variant" = noudev ] && systemctl start $units
start=$(date +%s%N)
udevadm settle --timeout=120
end=$(date +%s%N)
echo "$variant: udevadm settle after it: $(((end - start) / 1000000)) ms"
i=0
while [ $i -lt 200 ]; do
    echo "link del gx$i"
    i=$((i + 1))
done | ip -batch -
udevadm settle --timeout=120
