#!/usr/bin/env bats
# ocf.bats: the OCF resource agent ocf/envsync without a cluster: its actions
# run by hand as Pacemaker would (needs resource-agents' ocf-shellfuncs;
# skipped without it).
load common
bats_require_minimum_version 1.5.0

setup_file() {
	sh "$ES_SRCDIR/samples/make-samples" "$BATS_FILE_TMPDIR/samples" >/dev/null
}

setup() {
	cd "$BATS_TEST_TMPDIR" || exit 1
	: "${OCF_ROOT:=/usr/lib/ocf}"
	[ -f "${OCF_FUNCTIONS_DIR:-$OCF_ROOT/lib/heartbeat}/ocf-shellfuncs" ] ||
		skip "resource-agents' ocf-shellfuncs not installed"
	export OCF_ROOT OCF_RESOURCE_INSTANCE=es_test HA_debug=0
	export HA_LOGFILE=$BATS_TEST_TMPDIR/ha.log
	cp "$BATS_FILE_TMPDIR"/samples/*.env "$BATS_FILE_TMPDIR"/samples/*.fd .
	mkdir stg
	cp active.env stg/staged.env
	cp standby.env target.env
	cp standby.env orig.env
	export OCF_RESKEY_staged=$PWD/stg/staged.env OCF_RESKEY_target=$PWD/target.env
	export OCF_RESKEY_state_dir=$PWD/state
	OCF_RESKEY_bindir=$(dirname "$(command -v envrev)")
	export OCF_RESKEY_bindir
	AGENT=$ES_SRCDIR/ocf/envsync
	STATE=$PWD/state/es_test.state
}

# Run an action; $status is its OCF exit code, $stderr its exit reason.
ra() { # ACTION
	run --separate-stderr "$AGENT" "$1"
}

# Invert the byte at OFFSET of FILE.
flipbyte() { # FILE OFFSET
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	# shellcheck disable=SC2059 # the format is a computed octal escape: one byte
	printf "\\$(printf %o $((255 - b)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

@test "meta-data is well-formed OCF XML, valid against ra-api-1.dtd" {
	ra meta-data
	[ "$status" -eq 0 ]
	[[ "$output" == *'<resource-agent name="envsync"'* ]]
	for p in staged target diff calibration state_dir bindir revision_attribute; do
		[[ "$output" == *"<parameter name=\"$p\""* ]]
	done
	command -v xmllint >/dev/null || skip "no xmllint"
	printf '%s\n' "$output" | xmllint --noout -
	dtd=/usr/share/resource-agents/ra-api-1.dtd
	[ -f "$dtd" ] || skip "no ra-api-1.dtd"
	printf '%s\n' "$output" | (cd "${dtd%/*}" && xmllint --noout --valid -)
}

@test "an unknown action is unimplemented (3)" {
	ra notify
	[ "$status" -eq 3 ]
}

@test "validate-all: parameters, binaries, files, calibration" {
	ra validate-all
	[ "$status" -eq 0 ]
	OCF_RESKEY_staged='' ra validate-all
	[ "$status" -eq 6 ]
	[[ "$stderr" == *"ocf-exit-reason:parameter 'staged' is required"* ]]
	OCF_RESKEY_target='' ra validate-all
	[ "$status" -eq 6 ]
	OCF_RESKEY_bindir=/nonexistent ra validate-all
	[ "$status" -eq 5 ]
	[[ "$stderr" == *"/nonexistent/envrev not found"* ]]
	OCF_RESKEY_staged=$PWD/nosuch ra validate-all
	[ "$status" -eq 5 ]
	OCF_RESKEY_target=$PWD/nosuch ra validate-all
	[ "$status" -eq 5 ]
	touch afile
	OCF_RESKEY_state_dir=$PWD/afile/state ra validate-all
	[ "$status" -eq 4 ]
	echo garbage > bad.cal
	OCF_RESKEY_calibration=$PWD/bad.cal ra validate-all
	[ "$status" -eq 6 ]
	[[ "$stderr" == *"ocf-exit-reason:envjudge: $PWD/bad.cal: line 1"* ]]
	OCF_RESKEY_calibration=$PWD/nosuch.cal ra validate-all
	[ "$status" -eq 6 ]
	envjudge --calibrate target.env --quick -o good.cal 2>/dev/null
	OCF_RESKEY_calibration=$PWD/good.cal ra validate-all
	[ "$status" -eq 0 ]
	[ "$(ls -A state)" = "" ]
}

@test "start syncs the target; monitor follows it; stop forgets" {
	ra monitor
	[ "$status" -eq 7 ]
	ra start
	[ "$status" -eq 0 ]
	cmp target.env stg/staged.env
	grep -qx 'how=recomputed diff' "$STATE"
	grep -qx 'revision=42' "$STATE"
	ra monitor
	[ "$status" -eq 0 ]
	# idempotent: a second start changes nothing
	before=$(cat "$STATE")
	ra start
	[ "$status" -eq 0 ]
	[ "$(cat "$STATE")" = "$before" ]
	# the target diverges from the staged image: failed
	cp orig.env target.env
	ra monitor
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"ocf-exit-reason:target $PWD/target.env is not at the staged revision"* ]]
	ra stop
	[ "$status" -eq 0 ]
	ra monitor
	[ "$status" -eq 7 ]
	ra stop
	[ "$status" -eq 0 ]
	cmp target.env orig.env
}

@test "start returns at once when the target is already at the staged image" {
	cp stg/staged.env target.env
	ra start
	[ "$status" -eq 0 ]
	grep -qx 'how=already at the staged image' "$STATE"
}

@test "a fresh pre-staged diff is used" {
	envdiff -o stg/staged.envd target.env stg/staged.env || [ $? -eq 1 ]
	OCF_RESKEY_diff=$PWD/stg/staged.envd ra start
	[ "$status" -eq 0 ]
	grep -qx 'how=pre-staged diff' "$STATE"
	cmp target.env stg/staged.env
}

@test "a stale, missing or corrupt pre-staged diff is recomputed" {
	envrev -s 40 -o old.env orig.env
	envdiff -o stale.envd old.env stg/staged.env || [ $? -eq 1 ]
	OCF_RESKEY_diff=$PWD/stale.envd ra start
	[ "$status" -eq 0 ]
	grep -qx 'how=recomputed diff' "$STATE"
	cmp target.env stg/staged.env

	ra stop
	cp orig.env target.env
	OCF_RESKEY_diff=$PWD/nosuch.envd ra start
	[ "$status" -eq 0 ]
	grep -qx 'how=recomputed diff' "$STATE"

	ra stop
	cp orig.env target.env
	envdiff -o bad.envd target.env stg/staged.env || [ $? -eq 1 ]
	flipbyte bad.envd 300
	OCF_RESKEY_diff=$PWD/bad.envd ra start
	[ "$status" -eq 0 ]
	grep -qx 'how=recomputed diff' "$STATE"
	cmp target.env stg/staged.env
	grep -q 'WARNING: diff .*bad.envd unusable' ha.log
}

@test "a diff whose base revision matches but whose contents do not is recomputed" {
	# the target was changed without a new revision since the diff was made
	envdiff -o d.envd target.env stg/staged.env || [ $? -eq 1 ]
	envdump -x config target.env > c
	printf 'x' >> c
	envdump -x bios target.env > b
	envdump -x bootenv target.env > e
	envdump -r 41 bios=b config=c bootenv=e -o target.env
	cp target.env changed.env
	OCF_RESKEY_diff=$PWD/d.envd ra start
	[ "$status" -eq 0 ]
	grep -qx 'how=recomputed diff' "$STATE"
	grep -q "target $PWD/target.env is not at the pre-staged diff's base; recomputing" ha.log
	cmp target.env stg/staged.env
}

@test "a corrupt staged image fails the start and leaves the target as it was" {
	envdiff -o stg/staged.envd target.env stg/staged.env || [ $? -eq 1 ]
	flipbyte stg/staged.env 5000
	OCF_RESKEY_diff=$PWD/stg/staged.envd ra start
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"ocf-exit-reason:envdiff: $PWD/stg/staged.env: item 'bios': CRC32 mismatch"* ]]
	grep -q "ERROR: envdiff $PWD/target.env $PWD/stg/staged.env failed" ha.log
	cmp target.env orig.env
	[ ! -e "$STATE" ]
	ra monitor
	[ "$status" -eq 7 ]
	# and without a pre-staged diff
	ra start
	[ "$status" -eq 1 ]
	cmp target.env orig.env
}

@test "equal revisions with different contents fail the start, target unchanged" {
	envrev -s 41 -o stg/staged.env active.env
	ra start
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"ocf-exit-reason:envrev: "*"revision 41"* ]]
	grep -q "ERROR: target $PWD/target.env and staged $PWD/stg/staged.env have equal revisions but different contents" ha.log
	cmp target.env orig.env
}

@test "a calibration that favours full copies: the staged image is copied" {
	cat > full.cal <<-EOF
	envsync-calibration 1
	medium test
	block_size 4096
	item_size 131072
	delta_fixed_ns 1e9
	delta_per_spot_ns 1e9
	delta_per_byte_ns 1e6
	delta_per_block_ns 1e9
	full_fixed_ns 1000
	full_per_byte_ns 0
	EOF
	OCF_RESKEY_calibration=$PWD/full.cal ra start
	[ "$status" -eq 0 ]
	cmp target.env stg/staged.env
}

@test "raw targets are synced too" {
	cp active.fd stg/staged.fd
	cp standby.fd target.fd
	OCF_RESKEY_staged=$PWD/stg/staged.fd OCF_RESKEY_target=$PWD/target.fd ra start
	[ "$status" -eq 0 ]
	cmp target.fd active.fd
	grep -qx 'revision=raw' "$STATE"
	OCF_RESKEY_staged=$PWD/stg/staged.fd OCF_RESKEY_target=$PWD/target.fd ra monitor
	[ "$status" -eq 0 ]
}

@test "a state file from before a reboot means stopped" {
	ra start
	[ "$status" -eq 0 ]
	sed -i 's/^boot_id=.*/boot_id=00000000-0000-0000-0000-000000000000/' "$STATE"
	ra monitor
	[ "$status" -eq 7 ]
	[ ! -e "$STATE" ]
}

@test "start leaves no temporary files in the state directory" {
	ra start
	[ "$status" -eq 0 ]
	[ -z "$(find state -name '.es_test*')" ]
}

# ---- the revision published as a node attribute (issue 6 item 5) ----

# attrd_updater stand-in: records its arguments in $ATTRD_LOG, exits
# $ATTRD_STATUS (default 0).
fake_attrd() {
	mkdir -p fakebin
	ATTRD_LOG=$PWD/attrd.log
	# shellcheck disable=SC2016 # $* and $ATTRD_STATUS are the fake's own, expanded when it runs
	printf '#!/bin/sh\nprintf "%%s\\n" "$*" >> "%s"\nexit ${ATTRD_STATUS:-0}\n' "$ATTRD_LOG" > fakebin/attrd_updater
	chmod +x fakebin/attrd_updater
	export PATH=$PWD/fakebin:$PATH
}

@test "monitor publishes the target's revision on a node where the resource is stopped and where it runs" {
	fake_attrd
	export OCF_RESKEY_CRM_meta_on_node=node2
	ra monitor
	[ "$status" -eq 7 ]
	[ "$(cat "$ATTRD_LOG")" = "-n envsync-revision -U 41" ]
	ra start
	[ "$status" -eq 0 ]
	: > "$ATTRD_LOG"
	ra monitor
	[ "$status" -eq 0 ]
	[ "$(cat "$ATTRD_LOG")" = "-n envsync-revision -U 42" ]
}

@test "the attribute's name is a parameter; empty publishes nothing" {
	fake_attrd
	export OCF_RESKEY_CRM_meta_on_node=node2 OCF_RESKEY_revision_attribute=es-rev
	ra monitor
	[ "$(cat "$ATTRD_LOG")" = "-n es-rev -U 41" ]
	: > "$ATTRD_LOG"
	OCF_RESKEY_revision_attribute='' ra monitor
	[ "$status" -eq 7 ]
	[ ! -s "$ATTRD_LOG" ]
}

@test "outside a cluster (no CRM_meta_on_node) nothing is published" {
	fake_attrd
	unset OCF_RESKEY_CRM_meta_on_node
	ra monitor
	[ "$status" -eq 7 ]
	[ ! -e "$ATTRD_LOG" ]
}

@test "a failing attrd_updater is logged and does not change monitor's result" {
	fake_attrd
	export OCF_RESKEY_CRM_meta_on_node=node2 ATTRD_STATUS=1
	ra start
	[ "$status" -eq 0 ]
	ra monitor
	[ "$status" -eq 0 ]
	grep -q "WARNING: cannot publish envsync-revision=42 with attrd_updater" ha.log
	cp orig.env target.env
	ra monitor
	[ "$status" -eq 1 ]
}

@test "a raw target has no revision: nothing published, monitor as before" {
	fake_attrd
	export OCF_RESKEY_CRM_meta_on_node=node2
	cp active.fd stg/staged.fd
	cp standby.fd target.fd
	export OCF_RESKEY_staged=$PWD/stg/staged.fd OCF_RESKEY_target=$PWD/target.fd
	ra start
	[ "$status" -eq 0 ]
	ra monitor
	[ "$status" -eq 0 ]
	[ ! -e "$ATTRD_LOG" ]
}
