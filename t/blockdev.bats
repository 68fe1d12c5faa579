#!/usr/bin/env bats
# blockdev.bats: block devices as sources and targets, on loop devices.
# Needs root and a working losetup; skipped (with the reason) otherwise.
load common

setup() {
	cd "$BATS_TEST_TMPDIR" || exit 1
	[ "$(id -u)" -eq 0 ] || skip "needs root for loop devices"
	command -v losetup >/dev/null || skip "losetup not installed"
	randfile old.fd 262144 5
	cp old.fd new.fd
	poke new.fd 0 0102
	poke new.fd 131072 aabbccddeeff00112233
	poke new.fd 262143 ff
	cp old.fd backing
	dev=$(losetup -f --show backing 2>/dev/null) || skip "no loop device available here"
	mkdir state
}

teardown() {
	if [ -n "${dev:-}" ]; then losetup -d "$dev" 2>/dev/null || true; fi
}

@test "envdump reads a block device with its real size" {
	envdump -r 1 disk="$dev" -o img.env
	run envdump -l img.env
	[[ "$output" == *" 262144 disk" ]]
	envdump -x disk img.env | cmp - old.fd
}

@test "delta to a block device in place, journal in -J DIR, rollback" {
	run envdiff "$dev" new.fd
	[ "$status" -eq 1 ]
	envdiff "$dev" new.fd > d.envd || true
	envapply -J state "$dev" d.envd
	cmp "$dev" new.fd
	ls state/."$(basename "$dev")".*.envsync-last
	run ! ls state/."$(basename "$dev")".*.envsync-journal
	envapply -J state --rollback "$dev"
	cmp "$dev" old.fd
}

@test "full copy to a block device goes through the journal too" {
	envdiff old.fd new.fd | envjudge -t 0 > d.envd || true
	envapply -J state -s new.fd "$dev" d.envd
	cmp "$dev" new.fd
}

@test "a block device cannot change size" {
	head -c 100 new.fd > short.fd
	envdiff old.fd short.fd > d.envd || true
	run envapply -J state "$dev" d.envd
	[ "$status" -eq 2 ]
	[[ "$output" == *"cannot change size"* ]]
	cmp "$dev" old.fd
}
