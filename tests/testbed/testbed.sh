#!/usr/bin/env bash
# The multi-hypervisor test bed: N independent libvirtd "hypervisors" hv1..hvN on this one machine, each
# in namespaces of its own, each reachable by its own URI, on which test guests really boot.
#
#   testbed.sh up [N]      start hv1..hvN (default 3); prints one URI per line
#   testbed.sh down [N]    stop them, remove their guests, networks and namespaces
#   testbed.sh uris [N]    the URIs (qemu+tcp://192.168.250.1X/system)
#   testbed.sh status [N]  which hypervisors answer
#   testbed.sh isolate I   hvI loses its network (its daemons and guests run on; its URI stops answering)
#   testbed.sh kill I      hvI dies: SIGKILL to every process in it (QEMUs, libvirtd, virtlockd, virtlogd, dnsmasq)
#   testbed.sh revive I    clear what is left of hvI and start it again, empty
#   testbed.sh reboot I    hvI comes back after a power cut (killed first if it still runs) with its definitions,
#                          images and logs, a fresh /run/libvirt and its link up: libvirtd autostarts its networks,
#                          pools and guests marked autostart, as a real host does at boot
#   testbed.sh up-one I    start hvI alone (hypervisors beyond the first three: a test's own); prints its URI
#   testbed.sh down-one I  stop hvI alone and remove what it had
#   testbed.sh restart I   libvirtd of hvI stops and starts again (its guests run on), reading its configuration anew;
#                          waits until it answers on its local socket ($ROOT/hvI/run/libvirt-sock)
#   testbed.sh killd I     libvirtd of hvI dies (SIGKILL; its guests run on); restart starts it again
#   testbed.sh sshd I      an sshd inside hvI on port 22 (key authentication; root's key $ROOT/ssh/id_ed25519, made on
#                          first use); prints hvI's host key as a known_hosts line
#   testbed.sh drop I | undrop I   hvI's firewall drops (or no longer drops) every packet to ports 22, 16509, 16514:
#                          a host that does not answer, as opposed to one that refuses
#   testbed.sh poweroff I  hvI is powered off, as playbooks/consolidate.yml's power action does to an emptied host:
#                          refused while a guest runs in it; its daemons stop, its URI stops answering
#   testbed.sh poweron I   hvI boots again (reboot: its definitions kept, what is marked autostart started)
#   testbed.sh exec I CMD...   run CMD inside hvI's namespaces
#
# Each hypervisor hvX has:
#   - a network namespace (eth0 = 192.168.250.1X on a bridge in a namespace of its own, tb-sw; the root
#     namespace reaches the bridge through tb0 = 192.168.250.1). Guest traffic stays in these namespaces;
#     libvirtd listens on plain TCP without auth only on this private bridge;
#   - a mount namespace: private /etc/libvirt (the host's, minus its guests, networks and pools, with its own
#     host_uuid), /run/libvirt, /var/lib/libvirt, /var/cache/libvirt (the host's QEMU capabilities cache is
#     copied in: start-up takes 0.2 s instead of 8), /var/log/libvirt, /etc/hosts, and a fresh /sys;
#   - a UTS namespace (hostname hvX), and a cgroup subtree and cgroup namespace of its own (machine cgroup
#     names of two daemons, the host's included, must not collide);
#   - its own virtlogd, virtlockd and libvirtd, with explicit pid files (the default ones are the host daemons');
#   - libvirt's lock manager (qemu.conf lock_manager = "lockd") with its lockspace on the shared storage
#     ($ROOT/shared/lockspace): a disk a live QEMU holds on one hypervisor cannot be opened on another;
#   - shared storage: $ROOT/shared/pool is the same directory on every hypervisor (tests define a pool there);
#   - migration_address / migration_host in qemu.conf (its hostname resolves to 127.0.0.1 otherwise).
# Files a guest boots from (kernel, initrd) live in the hypervisor's own /var/lib/libvirt, which the root
# namespace sees at $ROOT/hvX/lib: libvirt chowns them while a guest runs, so each hypervisor has its copy
# of the test guest (tools/testguest.py) at /var/lib/libvirt/images/kvmfleet-test. Its serial logs are at
# $ROOT/hvX/log/qemu.
set -euo pipefail

ROOT=${KVMFLEET_TESTBED:-/run/kvmfleet-testbed}
NET=192.168.250
SWITCH=tb-sw
N=${2:-3}
SELF=$(readlink -f "$0")
REPO=$(cd "$(dirname "$SELF")/../.." && pwd)

uri() { echo "qemu+tcp://$NET.1$1/system"; }
cgroup_mounts() { awk '$3 ~ /^cgroup/ {print $2}' /proc/mounts; }

answers() { virsh -q -c "$(uri "$1")" version >/dev/null 2>&1; }

prepare() {  # $1: index. The hypervisor's private directories and configuration, in the root namespace.
  local i=$1 dir=$ROOT/hv$1 ip=$NET.1$1
  rm -rf "$dir"
  mkdir -p "$dir"/run "$dir"/lib/images "$dir"/cache "$dir"/log/qemu
  cp -a /etc/libvirt "$dir/etc"
  rm -rf "$dir/etc/storage" "$dir/etc/qemu/autostart" "$dir/etc/qemu/networks/autostart"
  find "$dir/etc/qemu" -name '*.xml' -delete
  mkdir -p "$dir/etc/qemu/networks/autostart"
  [ -d /var/cache/libvirt/qemu ] && cp -a /var/cache/libvirt/qemu "$dir/cache/"
  {
    echo "host_uuid = \"5ca1ab1e-0000-4000-8000-0000000000$(printf %02d "$i")\""
    echo 'listen_tls = 0'
    echo 'listen_tcp = 1'
    echo "listen_addr = \"$ip\""
    echo 'auth_tcp = "none"'
  } >>"$dir/etc/libvirtd.conf"
  printf 'migration_address = "%s"\nmigration_host = "%s"\n' "$ip" "$ip" >>"$dir/etc/qemu.conf"
  mkdir -p "$ROOT/shared/lockspace" "$ROOT/shared/pool"
  echo 'lock_manager = "lockd"' >>"$dir/etc/qemu.conf"
  echo "file_lockspace_dir = \"$ROOT/shared/lockspace\"" >>"$dir/etc/qemu-lockd.conf"
  { echo "127.0.0.1 localhost"; echo "127.0.1.1 hv$i"; for j in $(seq 9); do echo "$NET.1$j hv$j"; done; } >"$dir/hosts"
}

plug() {  # $1: index. The network namespace tb-hvI with eth0 = 192.168.250.1I on the switch, link up. A namespace
  # that is there already (as after a kill) is reused, its eth0 too if it has one.
  local i=$1 ns=tb-hv$1 tries=0
  ip netns list 2>/dev/null | grep -qw "$ns" || ip netns add "$ns"
  if ! ip -n "$ns" link show eth0 >/dev/null 2>&1; then
    # The switch's end of a namespace deleted a moment ago may still be there: the kernel removes it lazily.
    ip -n "$SWITCH" link del "tbhv$i" 2>/dev/null || true
    while ip -n "$SWITCH" link show "tbhv$i" >/dev/null 2>&1; do
      sleep 0.1
      tries=$((tries + 1))
      [ "$tries" -lt 50 ] || { echo "hv$i: tbhv$i is still on the switch" >&2; return 1; }
    done
    ip link add "tbhv$i" netns "$SWITCH" type veth peer name eth0 netns "$ns"
  fi
  ip -n "$SWITCH" link set "tbhv$i" master br0 up
  ip -n "$ns" addr replace "$NET.1$i/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
}

launch() {  # $1: index. The daemons in new mount, UTS and cgroup namespaces inside tb-hvI; waits for the URI.
  local i=$1 tries=0
  nsenter --net="/run/netns/tb-hv$i" unshare --mount --uts --propagation private "$SELF" _enter "$i"
  until answers "$i"; do
    sleep 0.1
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || { echo "hv$i did not answer on $(uri "$i") within 30 s" >&2; return 1; }
  done
}

up_one() {
  local i=$1
  answers "$i" && return 0
  prepare "$i"
  plug "$i"
  # The test guest (kernel + busybox initramfs) in the hypervisor's own /var/lib/libvirt/images/kvmfleet-test.
  python3 "$REPO/tools/testguest.py" build "$ROOT/hv$i/lib/images/kvmfleet-test" >/dev/null
  launch "$i"
}

switch_up() {  # The switch (a bridge in the namespace tb-sw) and the root namespace's port on it, unless there.
  if ! ip netns list 2>/dev/null | grep -qw "$SWITCH"; then
    ip netns add "$SWITCH"
    ip -n "$SWITCH" link add br0 type bridge
    ip -n "$SWITCH" link set br0 up
    ip -n "$SWITCH" link set lo up
    ip link add tb0 type veth peer name up0 netns "$SWITCH"
    ip -n "$SWITCH" link set up0 master br0 up
    ip addr add "$NET.1/24" dev tb0
    ip link set tb0 up
  fi
}

up() {
  switch_up
  for i in $(seq "$N"); do up_one "$i"; uri "$i"; done
}

# Inside the new network, mount and UTS namespaces: the hostname, cgroups of its own, then a new cgroup
# namespace rooted there.
enter() {
  local i=$1
  hostname "hv$i"
  local mount group
  for mount in $(cgroup_mounts); do
    group=$mount/kvmfleet-tb-hv$i
    mkdir -p "$group"
    if [ -f "$mount/cpuset.cpus" ]; then
      cat "$mount/cpuset.cpus" >"$group/cpuset.cpus"
      cat "$mount/cpuset.mems" >"$group/cpuset.mems"
    fi
    echo $$ >"$group/cgroup.procs"
  done
  exec unshare --cgroup "$SELF" _start "$i"
}

# In the new cgroup namespace: this namespace's /sys and cgroup hierarchies, the private directories, the daemons.
start() {
  local i=$1 dir=$ROOT/hv$1
  awk '$3 ~ /^cgroup/ {print $2, $3, $4}' /proc/mounts >"$dir/cgroup-mounts"
  mount -t sysfs sysfs /sys
  mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
  local path type options
  while read -r path type options; do
    mkdir -p "$path"
    mount -t "$type" -o "$options" "$type" "$path"
  done <"$dir/cgroup-mounts"
  mount --bind "$dir/etc" /etc/libvirt
  mount --bind "$dir/run" /run/libvirt
  mount --bind "$dir/lib" /var/lib/libvirt
  mount --bind "$dir/cache" /var/cache/libvirt
  mount --bind "$dir/log" /var/log/libvirt
  mount --bind "$dir/hosts" /etc/hosts
  virtlogd -d -p /run/libvirt/virtlogd.pid
  virtlockd -d -p /run/libvirt/virtlockd.pid
  libvirtd -d -l -p /run/libvirt/libvirtd.pid
}

local_uri() { echo "qemu+unix:///system?socket=$ROOT/hv$1/run/libvirt-sock"; }

in_hv() {  # $1: index, then a command: run it in hvI's network, mount, UTS and cgroup namespaces and its cgroups
  local i=$1 pid mount
  shift
  pid=$(cat "$ROOT/hv$i/run/virtlogd.pid")
  (
    for mount in $(cgroup_mounts); do
      [ -d "$mount/kvmfleet-tb-hv$i" ] && echo "$BASHPID" >"$mount/kvmfleet-tb-hv$i/cgroup.procs"
    done
    exec nsenter -t "$pid" -n -m -u -C -- "$@"
  )
}

stop_libvirtd() {  # $1: index; $2: the signal
  local dir=$ROOT/hv$1
  if alive "$dir/run/libvirtd.pid"; then kill "-$2" "$(cat "$dir/run/libvirtd.pid")" 2>/dev/null || true; fi
  while alive "$dir/run/libvirtd.pid"; do sleep 0.1; done
}

restart_one() {  # $1: index. libvirtd stops and starts again; the guests, virtlogd and virtlockd run on.
  local i=$1 tries=0
  stop_libvirtd "$i" TERM
  rm -f "$ROOT/hv$i/run/libvirtd.pid"
  in_hv "$i" libvirtd -d -l -p /run/libvirt/libvirtd.pid
  until virsh -q -c "$(local_uri "$i")" version >/dev/null 2>&1; do
    sleep 0.1
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || { echo "hv$i: libvirtd did not answer on its socket within 30 s" >&2; return 1; }
  done
}

client_key() {  # root's key for the test bed's sshds, made on first use
  mkdir -p "$ROOT/ssh"
  [ -f "$ROOT/ssh/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C kvmfleet-testbed -f "$ROOT/ssh/id_ed25519"
}

sshd_one() {  # $1: index. sshd in hvI: key authentication only, no PAM; prints hvI's host key as a known_hosts line
  local i=$1 dir=$ROOT/hv$1/ssh
  client_key
  mkdir -p "$dir"
  [ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "hv$i" -f "$dir/host_ed25519"
  cp "$ROOT/ssh/id_ed25519.pub" "$dir/authorized_keys"
  cat >"$dir/sshd_config" <<EOF
ListenAddress 0.0.0.0:22
HostKey $dir/host_ed25519
AuthorizedKeysFile $dir/authorized_keys
PidFile /run/libvirt/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
EOF
  mkdir -p /run/sshd
  if ! alive "$ROOT/hv$i/run/sshd.pid"; then in_hv "$i" /usr/sbin/sshd -f "$dir/sshd_config"; fi
  echo "$NET.1$i $(cut -d' ' -f1,2 "$dir/host_ed25519.pub")"
}

drop_one() {  # $1: index; $2: add or delete. Packets to hvI's daemons are dropped, as by a firewall (no answer at all).
  if [ "$2" = add ]; then
    ip netns exec "tb-hv$1" nft -f - <<EOF
table inet kvmfleet_drop {
  chain input { type filter hook input priority -10; policy accept; tcp dport { 22, 16509, 16514 } drop; }
}
EOF
  else
    ip netns exec "tb-hv$1" nft delete table inet kvmfleet_drop 2>/dev/null || true
  fi
}

alive() {  # $1: a pid file; a zombie counts as gone
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  grep -qs '^State:.*[^Z] (' "/proc/$pid/status"
}

down_one() {
  local i=$1 dir u name
  dir=$ROOT/hv$i
  if answers "$i"; then
    u=$(uri "$i")
    for name in $(virsh -c "$u" list --all --name); do
      virsh -c "$u" destroy "$name" >/dev/null 2>&1 || true
      virsh -c "$u" undefine --nvram "$name" >/dev/null 2>&1 || true
    done
    for name in $(virsh -c "$u" net-list --all --name); do
      virsh -c "$u" net-destroy "$name" >/dev/null 2>&1 || true
      virsh -c "$u" net-undefine "$name" >/dev/null 2>&1 || true
    done
  fi
  for name in libvirtd virtlockd virtlogd sshd; do
    if alive "$dir/run/$name.pid"; then kill "$(cat "$dir/run/$name.pid")" 2>/dev/null || true; fi
  done
  for name in libvirtd virtlockd virtlogd sshd; do
    while alive "$dir/run/$name.pid"; do sleep 0.1; done
  done
  kill_one "$i"  # what is left in its namespace: guests of a daemon the URI did not reach (TLS only, dropped)
  ip netns del "tb-hv$i" 2>/dev/null || true
  local mount
  for mount in $(cgroup_mounts); do
    if [ -d "$mount/kvmfleet-tb-hv$i" ]; then
      find "$mount/kvmfleet-tb-hv$i" -depth -type d -exec rmdir {} + 2>/dev/null || true
    fi
  done
  rm -rf "$dir"
}

down() {
  local i dir
  for i in $(seq "$N"); do down_one "$i"; done
  for dir in "$ROOT"/hv*; do  # a test's own hypervisors beyond N, if one was left
    [ -d "$dir" ] && down_one "${dir##*/hv}"
  done
  rm -rf "$ROOT/ssh"
  rm -rf "$ROOT/shared"
  if [ -z "$(ls "$ROOT" 2>/dev/null)" ]; then
    ip link del tb0 2>/dev/null || true
    ip netns del "$SWITCH" 2>/dev/null || true
    rmdir "$ROOT" 2>/dev/null || true
  fi
}

isolate() {  # $1: index. The hypervisor's link goes down: nothing answers, everything runs on.
  ip -n "tb-hv$1" link set eth0 down
  # Forget its MAC here, so that a connection fails once ARP does (seconds), as for a host gone from the LAN,
  # and does not wait out TCP's retries against a cached address.
  ip neigh flush to "$NET.1$1" 2>/dev/null || true
}

kill_one() {  # $1: index. Every process of the hypervisor dies at once, as in a power cut: its QEMUs, daemons,
  # dnsmasqs - whatever runs in its network namespace.
  local pid pids tries=0
  pids=$(ip netns pids "tb-hv$1" 2>/dev/null || true)
  for pid in $pids; do kill -9 "$pid" 2>/dev/null || true; done
  while [ -n "$(ip netns pids "tb-hv$1" 2>/dev/null)" ]; do
    sleep 0.1
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || { echo "hv$1: processes left after SIGKILL: $(ip netns pids "tb-hv$1")" >&2; return 1; }
  done
}

poweroff_one() {  # $1: index. A clean power-off of an emptied host: refused while a guest runs there.
  local running
  running=$(virsh -q -c "$(local_uri "$1")" list --name 2>/dev/null | sed '/^$/d' || true)
  if [ -n "$running" ]; then
    echo "hv$1 still runs $(echo "$running" | tr '\n' ' '): not powered off" >&2
    return 1
  fi
  kill_one "$1"
}

reboot_one() {  # $1: index. A power cut, then the host boots again: what is on disk (/etc/libvirt, /var/lib/libvirt,
  # logs) stays, what lived in memory goes - processes, /run/libvirt (a tmpfs on a real host: pid files, sockets,
  # the status XML of running guests and active networks, and each driver's once-per-boot marker
  # /run/libvirt/<driver>/autostarted - qemu, network, storage, lxc: while it is there, that driver autostarts
  # nothing), and the devices and firewall rules of the network namespace. libvirtd then autostarts what is
  # marked autostart.
  local i=$1 ns=tb-hv$1 dir=$ROOT/hv$1 mount name
  [ -d "$dir/etc" ] || { echo "hv$i was never up (no $dir/etc): use up or revive" >&2; return 1; }
  kill_one "$i"
  find "$dir/run" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
  # The dead QEMUs' cgroups. A cgroup directory is never empty to find (-empty): it holds its control files;
  # rmdir removes one that has no processes and no children, and refuses the others.
  for mount in $(cgroup_mounts); do
    if [ -d "$mount/kvmfleet-tb-hv$i" ]; then
      find "$mount/kvmfleet-tb-hv$i" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
    fi
  done
  switch_up
  if ip netns list 2>/dev/null | grep -qw "$ns"; then
    # What the dead libvirtd set up in the namespace goes with the reboot: its networks' bridges (with one
    # left over, still holding the network's address, autostart fails: "Network is already in use by
    # interface ...") and its firewall rules.
    for name in $(ip -n "$ns" -o link show | awk -F': ' '{sub(/@.*/, "", $2); print $2}'); do
      case $name in lo | eth0) ;; *) ip -n "$ns" link del "$name" 2>/dev/null || true ;; esac
    done
    ip netns exec "$ns" nft flush ruleset 2>/dev/null || true
  fi
  plug "$i"
  ip neigh flush to "$NET.1$i" 2>/dev/null || true
  launch "$i"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  uris) for i in $(seq "$N"); do uri "$i"; done ;;
  status) for i in $(seq "$N"); do if answers "$i"; then echo "hv$i up $(uri "$i")"; else echo "hv$i down"; fi; done ;;
  isolate) isolate "$2" ;;
  kill) kill_one "$2" ;;
  revive) down_one "$2"; up_one "$2" >/dev/null; uri "$2" ;;
  reboot) reboot_one "$2"; uri "$2" ;;
  up-one) switch_up; up_one "$2"; uri "$2" ;;
  down-one) down_one "$2" ;;
  restart) restart_one "$2" ;;
  killd) stop_libvirtd "$2" KILL ;;
  sshd) sshd_one "$2" ;;
  drop) drop_one "$2" add ;;
  undrop) drop_one "$2" delete ;;
  poweroff) poweroff_one "$2" ;;
  poweron) reboot_one "$2"; uri "$2" ;;
  exec) i=$2; shift 2; in_hv "$i" "$@" ;;
  _enter) enter "$2" ;;
  _start) start "$2" ;;
  *) echo "usage: $0 up|down|uris|status [N] | isolate|kill|revive|reboot|up-one|down-one|restart|killd|sshd|drop|undrop I" \
       "| exec I CMD..." >&2; exit 2 ;;
esac
