#!/bin/bash
# failover.sh: a real Pacemaker/Corosync failover of the envsync agent, on one
# machine, as root. Two nodes, each in its own network namespace (corosync over
# a veth pair) and its own mount and UTS namespace (private Pacemaker state,
# IPC and /run; its envsync data bind-mounted at /run/envsync-lab), run a
# group "esgrp" = envsync (this tree's agent, as ocf:envsync:envsync) then
# ocf:pacemaker:Dummy ("svc"), preferring node1. Both nodes' staging areas are
# filled by contrib/envsync-prestage from the active's image; node1's target
# is the active's environment, node2's the older standby's.
#
#   1. node1 is killed hard: node2 must run envsync, then svc; its target must
#      end byte-identical to the staged image, and envsync's start must have
#      finished before svc's started. The failover time (kill to svc started)
#      and envsync's share of it are printed.
#      Both nodes publish their target's revision as the node attribute
#      envsync-revision (the agent's monitor, with a role=Stopped monitor on
#      the standby): node1 the active's, node2 its older one before the kill,
#      the active's after the failover.
#   2. node1 comes back and the group returns to it; node2's target is reset
#      and its staged image corrupted; node1 is killed again: envsync's start
#      must fail on node2, svc must not start there, node2's target must be
#      unchanged.
#
# Usage: t/failover.sh [BINDIR [AGENT]]
#   BINDIR  the envsync tools (default: the build's bin/)
#   AGENT   the resource agent (default: ocf/envsync of this tree)
#   ES_FAILOVER_MIB=N   sync a N MiB item instead of the small samples
#   ES_FAILOVER_KEEP=1  keep the work directory (logs) even on success
# Exit status: 0 passed, 1 failed, 77 skipped (not root, or Pacemaker, Corosync
# or iproute2 missing). Everything is torn down on any exit.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
bindir=${1:-${ES_BUILDDIR:-$here}/bin}
agent=${2:-$here/ocf/envsync}
bindir=$(cd "$bindir" && pwd)
agent=$(cd "$(dirname "$agent")" && pwd)/$(basename "$agent")
t_begin=$(date +%s)

skip() {
	echo "failover.sh: skipped: $*" >&2
	exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root"
for c in corosync pacemakerd crm_mon cibadmin crm_attribute attrd_updater ip unshare nsenter flock; do
	command -v "$c" >/dev/null || skip "$c not installed (apt-get install pacemaker corosync pacemaker-cli-utils iproute2)"
done
[ -f /usr/lib/ocf/resource.d/pacemaker/Dummy ] || skip "ocf:pacemaker:Dummy not installed"
[ -x "$bindir/envrev" ] || { echo "failover.sh: no envsync tools in $bindir" >&2; exit 1; }

ns=esfo             # namespaces esfo1, esfo2; veth esfov1 <-> esfov2
lab=/run/envsync-lab  # where each node sees its own data
work=$(mktemp -d /tmp/envsync-failover.XXXXXX)
failed=1

# ---- the cluster: up, on, kill, down ----

teardown() {
	local n pids
	for n in 1 2; do
		pids=$(ip netns pids "$ns$n" 2>/dev/null || true)
		# shellcheck disable=SC2086 # a list of pids
		[ -z "$pids" ] || kill $pids 2>/dev/null || true
	done
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		pids=$(ip netns pids "${ns}1" 2>/dev/null; ip netns pids "${ns}2" 2>/dev/null || true)
		[ -n "$pids" ] || break
		sleep 0.5
	done
	for n in 1 2; do
		pids=$(ip netns pids "$ns$n" 2>/dev/null || true)
		# shellcheck disable=SC2086 # a list of pids
		[ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
	done
	sleep 0.5
	ip netns del "${ns}1" 2>/dev/null || true
	ip netns del "${ns}2" 2>/dev/null || true
	if [ "$failed" -eq 0 ] && [ -z "${ES_FAILOVER_KEEP-}" ]; then
		rm -rf "$work"
	else
		echo "failover.sh: logs and data kept in $work" >&2
	fi
}
trap teardown EXIT
trap 'exit 1' INT TERM HUP

corosync_conf() { # LOGDIR
	cat <<C
totem {
    version: 2
    cluster_name: esfo
    transport: knet
    crypto_cipher: none
    crypto_hash: none
    token: 1000
}
nodelist {
    node {
        ring0_addr: 10.78.0.1
        name: node1
        nodeid: 1
    }
    node {
        ring0_addr: 10.78.0.2
        name: node2
        nodeid: 2
    }
}
quorum {
    provider: corosync_votequorum
    two_node: 1
}
logging {
    to_logfile: yes
    logfile: $1/corosync.log
    to_stderr: no
    to_syslog: no
}
C
}

# Node N: a private mount+UTS namespace inside netns esfoN, with the agent
# under test bound in as provider "envsync" beside the installed providers.
start_node() { # N
	local n=$1 d=$work/n$1 p
	mkdir -p "$d/etc" "$d/log" "$d/ra/envsync"
	corosync_conf "$d/log" > "$d/etc/corosync.conf"
	cp "$agent" "$d/ra/envsync/envsync"
	chmod 755 "$d/ra/envsync/envsync"
	local binds=
	for p in /usr/lib/ocf/resource.d/*; do
		if [ ! -d "$p" ] || [ "${p##*/}" = envsync ]; then
			continue
		fi
		mkdir -p "$d/ra/${p##*/}"
		binds="$binds mount --bind '$p' '$d/ra/${p##*/}';"
	done
	rm -f "$d/pacemakerd.pid"
	ip netns exec "$ns$n" unshare --mount --uts --propagation private bash -c "
		set -e
		hostname node$n
		mount --bind '$d/etc' /etc/corosync
		mount -t tmpfs tmpfs /var/lib/pacemaker
		mkdir -p /var/lib/pacemaker/cib /var/lib/pacemaker/pengine /var/lib/pacemaker/blackbox /var/lib/pacemaker/cores
		chown -R hacluster:haclient /var/lib/pacemaker
		mount -t tmpfs tmpfs /var/lib/corosync
		mount -t tmpfs tmpfs /dev/shm
		mount -t tmpfs tmpfs /run
		mkdir -p /run/crm && chown hacluster:haclient /run/crm
		mkdir -p '$lab' && mount --bind '$d/data' '$lab'
		$binds
		mount --rbind '$d/ra' /usr/lib/ocf/resource.d
		mkdir -p /var/log/pacemaker && mount --bind '$d/log' /var/log/pacemaker
		corosync -f > '$d/log/corosync.out' 2>&1 &
		sleep 1
		pacemakerd -f > '$d/log/pacemakerd.out' 2>&1 &
		echo \$! > '$d/pacemakerd.pid'
		wait
	" > "$d/log/node.out" 2>&1 &
	disown
}

on() { # N CMD...: run CMD as node N sees the cluster
	local n=$1
	shift
	nsenter -t "$(cat "$work/n$n/pacemakerd.pid")" -n -m -u "$@"
}

kill_node() { # N: SIGKILL corosync and every Pacemaker daemon of node N
	local pids
	pids=$(ip netns pids "$ns$1")
	# shellcheck disable=SC2086 # a list of pids
	[ -z "$pids" ] || kill -9 $pids
}

# Wait up to SECONDS for CMD to succeed.
wait_for() { # SECONDS WHAT CMD...
	local limit=$(($(date +%s) + $1)) what=$2
	shift 2
	until "$@" >/dev/null 2>&1; do
		if [ "$(date +%s)" -ge "$limit" ]; then
			echo "FAIL: timed out waiting for $what" >&2
			return 1
		fi
		sleep 0.2
	done
}

mon() { # N: crm_mon's one-shot status as node N sees it
	on "$1" crm_mon -1 -r 2>/dev/null
}
online_both() { mon 1 | grep -q 'Online: \[ node1 node2 \]'; }
started_on() { # RSC NODE N: node N sees RSC started on NODE
	mon "$3" | grep -Eq "^ *\* $1[[:space:]].*Started $2\$"
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

ts() { date +%s.%N; }
mtime() { stat -c %.9Y "$1"; }
# The value of node NODE's envsync-revision attribute as node N's attrd has it.
rev_attr() { # N NODE
	on "$1" attrd_updater -Q -n envsync-revision -N "$2" 2>/dev/null | sed -n 's/.* value="\([0-9]*\)".*/\1/p'
}
rev_attr_is() { [ "$(rev_attr "$1" "$2")" = "$3" ]; } # N NODE VALUE
statef() { sed -n "s/^$2=//p" "$1"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# ---- the data: samples, each node's target and staging area ----

samples=$work/samples
if [ -n "${ES_FAILOVER_MIB-}" ] && [ "${ES_FAILOVER_MIB}" -gt 0 ]; then
	mkdir -p "$samples"
	head -c $((ES_FAILOVER_MIB << 20)) /dev/urandom > "$samples/s.bios"
	cp "$samples/s.bios" "$samples/a.bios"
	for off in 4096 1000000 $((ES_FAILOVER_MIB << 19)); do
		printf 'changed-setting' | dd of="$samples/a.bios" bs=1 seek="$off" conv=notrunc status=none
	done
	printf 'mode=standby\n' > "$samples/s.cfg"
	printf 'mode=active\n' > "$samples/a.cfg"
	"$bindir/envdump" -r 41 bios="$samples/s.bios" config="$samples/s.cfg" -o "$samples/standby.env"
	"$bindir/envdump" -r 42 bios="$samples/a.bios" config="$samples/a.cfg" -o "$samples/active.env"
else
	sh "$here/samples/make-samples" "$samples" "$bindir/envdump" >/dev/null
fi
for n in 1 2; do
	mkdir -p "$work/n$n/data/state"
done
cp "$samples/active.env" "$work/n1/data/target.env"   # node1 runs the active's environment
cp "$samples/standby.env" "$work/n2/data/target.env"  # node2's is older
for n in 1 2; do
	"$here/contrib/envsync-prestage" -b "$bindir" "$samples/active.env" \
		"$work/n$n/data/staging" "$work/n$n/data/target.env"
done
cp "$work/n2/data/target.env" "$work/n2.target.before"
echo "== node2 before: target revision $("$bindir/envrev" "$work/n2/data/target.env"), staged revision $("$bindir/envrev" "$work/n2/data/staging/staged.env");" \
	"staged diff: $("$bindir/envdiff" --stat "$work/n2/data/staging/staged.envd" | tail -n 1)"

# ---- the cluster ----

ip netns add "${ns}1"
ip netns add "${ns}2"
ip link add "${ns}v1" type veth peer name "${ns}v2"
ip link set "${ns}v1" netns "${ns}1"
ip link set "${ns}v2" netns "${ns}2"
ip -n "${ns}1" addr add 10.78.0.1/24 dev "${ns}v1"
ip -n "${ns}2" addr add 10.78.0.2/24 dev "${ns}v2"
for n in 1 2; do
	ip -n "$ns$n" link set lo up
	ip -n "$ns$n" link set "${ns}v$n" up
done
start_node 1
start_node 2
wait_for 20 "node1's pacemakerd" test -s "$work/n1/pacemakerd.pid"
wait_for 20 "node2's pacemakerd" test -s "$work/n2/pacemakerd.pid"
wait_for 90 "both nodes online" online_both
echo "== cluster up after $(($(date +%s) - t_begin)) s"

on 1 crm_attribute -t crm_config -n stonith-enabled -v false
on 1 crm_attribute -t crm_config -n no-quorum-policy -v ignore
on 1 cibadmin --create -o resources --xml-text "
<group id='esgrp'>
  <primitive id='es' class='ocf' provider='envsync' type='envsync'>
    <instance_attributes id='es-ia'>
      <nvpair id='es-staged' name='staged' value='$lab/staging/staged.env'/>
      <nvpair id='es-diff' name='diff' value='$lab/staging/staged.envd'/>
      <nvpair id='es-target' name='target' value='$lab/target.env'/>
      <nvpair id='es-state' name='state_dir' value='$lab/state'/>
      <nvpair id='es-bindir' name='bindir' value='$bindir'/>
    </instance_attributes>
    <operations>
      <op id='es-start' name='start' interval='0' timeout='60s'/>
      <op id='es-stop' name='stop' interval='0' timeout='20s'/>
      <op id='es-monitor' name='monitor' interval='5s' timeout='30s'/>
      <op id='es-monitor-standby' name='monitor' interval='4s' timeout='30s' role='Stopped'/>
    </operations>
  </primitive>
  <primitive id='svc' class='ocf' provider='pacemaker' type='Dummy'>
    <instance_attributes id='svc-ia'>
      <nvpair id='svc-state' name='state' value='$lab/svc.state'/>
    </instance_attributes>
    <operations>
      <op id='svc-monitor' name='monitor' interval='10s' timeout='20s'/>
    </operations>
  </primitive>
</group>"
on 1 cibadmin --create -o constraints --xml-text \
	"<rsc_location id='esgrp-prefers-node1' rsc='esgrp' node='node1' score='100'/>"
wait_for 30 "svc started on node1" started_on svc node1 1
wait_for 10 "envsync started on node1" started_on es node1 1
[ ! -e "$work/n2/data/svc.state" ] || fail "svc also started on node2"
cmp "$work/n2/data/target.env" "$work/n2.target.before" || fail "node2's target changed while node1 was active"
echo "== group running on node1 (envsync: $(statef "$work/n1/data/state/es.state" how))"
rev_active=$("$bindir/envrev" "$samples/active.env")
rev_standby=$("$bindir/envrev" "$samples/standby.env")
wait_for 20 "node1's envsync-revision attribute to be $rev_active" rev_attr_is 1 node1 "$rev_active" ||
	fail "node1 (running envsync) publishes envsync-revision='$(rev_attr 1 node1)', not $rev_active"
wait_for 20 "node2's envsync-revision attribute to be $rev_standby" rev_attr_is 1 node2 "$rev_standby" ||
	fail "node2 (standby) publishes envsync-revision='$(rev_attr 1 node2)', not $rev_standby"
echo "PASS: node attribute envsync-revision: node1 $rev_active (running envsync), node2 $rev_standby (standby)"

# ---- scenario 1: node1 dies, node2 syncs and takes over ----

t_kill=$(ts)
kill_node 1
echo "== node1 killed"
wait_for 60 "svc started on node2" started_on svc node2 2
[ -e "$work/n2/data/svc.state" ] || fail "svc on node2 left no state file"
wait_for 10 "envsync started on node2" started_on es node2 2
cmp "$work/n2/data/target.env" "$work/n2/data/staging/staged.env" ||
	fail "node2's target is not byte-identical to the staged image"
cmp "$work/n2/data/target.env" "$samples/active.env" || fail "node2's target is not the active's image"
es_state=$work/n2/data/state/es.state
[ -f "$es_state" ] || fail "envsync left no state on node2"
es_b=$(statef "$es_state" start_begin)
es_e=$(statef "$es_state" start_end)
svc_t=$(mtime "$work/n2/data/svc.state")
awk -v e="$es_e" -v s="$svc_t" 'BEGIN { exit !(e <= s) }' ||
	fail "svc started ($svc_t) before envsync's start finished ($es_e)"
awk -v k="$t_kill" -v b="$es_b" 'BEGIN { exit !(k <= b) }' ||
	fail "envsync's start on node2 began ($es_b) before node1 was killed ($t_kill)"
fo=$(secs "$t_kill" "$svc_t")
sync=$(secs "$es_b" "$es_e")
echo "PASS: node2 ran envsync ($(statef "$es_state" how), revision $(statef "$es_state" revision)), then svc; target byte-identical to the staged image"
echo "   kill -> envsync start began  $(secs "$t_kill" "$es_b") s"
echo "   envsync start (the sync)     $sync s"
echo "   envsync done -> svc started  $(secs "$es_e" "$svc_t") s"
echo "   failover time (kill -> svc started): $fo s; the sync's share: $(awk -v a="$sync" -v b="$fo" 'BEGIN { printf "%.1f%%", 100 * a / b }')"
grep -h "Result of start operation for \(es\|svc\) on node2" "$work/n2/log/pacemaker.log" 2>/dev/null |
	sed 's/^/   pacemaker.log: /' || true
wait_for 20 "node2's envsync-revision attribute to be $rev_active" rev_attr_is 2 node2 "$rev_active" ||
	fail "node2 (now running envsync) publishes envsync-revision='$(rev_attr 2 node2)', not $rev_active"
echo "PASS: node2 now publishes envsync-revision $rev_active"

# ---- scenario 2: a corrupt staged image fails the sync; svc stays down ----

start_node 1
wait_for 20 "node1's pacemakerd" test -s "$work/n1/pacemakerd.pid"
wait_for 90 "node1 back online" online_both
wait_for 60 "the group back on node1" started_on svc node1 1
wait_for 20 "envsync stopped on node2" test ! -e "$es_state"
echo "== node1 back, group on node1 again"
cp "$work/n2.target.before" "$work/n2/data/target.env"
# invert one byte of the staged image's first item: its CRC32 no longer matches
img=$work/n2/data/staging/staged.env
off=$((32 + 80 * $(od -An -tu4 -j12 -N4 --endian=little "$img" | tr -d ' ') + 100))
b=$(od -An -tu1 -j "$off" -N1 "$img" | tr -d ' ')
# shellcheck disable=SC2059 # the format is the byte, as an octal escape
printf "\\$(printf %o $((255 - b)))" | dd of="$img" bs=1 seek="$off" conv=notrunc status=none
echo "== node2's staged image corrupted at byte $off; node2's target reset to revision $("$bindir/envrev" "$work/n2/data/target.env")"

kill_node 1
echo "== node1 killed again"
# crm_mon's XML lists the failed action: <failure op_key="es_start_0" node="node2" ...>
failures() { on 2 crm_mon -1 --output-as=xml 2>/dev/null | grep '<failure '; }
es_failed() { failures | grep 'op_key="es_start_0"' | grep -q 'node="node2"'; }
wait_for 60 "envsync's start to fail on node2" es_failed
sleep 3 # give Pacemaker time to (wrongly) go on with svc
failures | grep 'op_key="es_start_0"' |
	sed -n 's/.*\(exitreason="[^"]*"\).*/   crm_mon: es_start_0 on node2 failed, \1/p' |
	sed "s/&amp;/\\&/g; s/&apos;/'/g; s/&quot;/\"/g"
started_on svc node2 2 && fail "svc started on node2 although envsync failed"
[ ! -e "$work/n2/data/svc.state" ] || fail "svc left a state file on node2"
[ ! -e "$es_state" ] || fail "envsync left a started state on node2"
cmp "$work/n2/data/target.env" "$work/n2.target.before" || fail "node2's target changed"
echo "PASS: envsync's start failed on node2, svc did not start there, node2's target is unchanged"

failed=0
echo "failover.sh: all passed in $(($(date +%s) - t_begin)) s"
