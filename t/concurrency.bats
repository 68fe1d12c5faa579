#!/usr/bin/env bats
# concurrency.bats: envapply runs on one target never interleave: each takes
# an flock(2) lock on .NAME.envsync-lock; another run fails at once with exit
# 5, or waits up to -w SECONDS for it.
load common
bats_require_minimum_version 1.5.0

setup_file() {
	sh "$ES_SRCDIR/samples/make-samples" "$BATS_FILE_TMPDIR/samples" >/dev/null
}

setup() {
	cd "$BATS_TEST_TMPDIR" || exit 1
	cp "$BATS_FILE_TMPDIR"/samples/standby.fd "$BATS_FILE_TMPDIR"/samples/active.fd .
	envdiff standby.fd active.fd | envjudge -o d.envd
	cp standby.fd t.fd
	HOLDER=
}

teardown() {
	release_lock
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# upper bounds on wall time scale with ES_TEST_SLOWDOWN (make check-valgrind
# sets it: every tool run there starts valgrind first)
slow=${ES_TEST_SLOWDOWN:-1}

# Hold an flock on LOCKFILE from a background process until release_lock.
hold_lock() { # LOCKFILE
	rm -f held release
	(
		exec 9>>"$1"
		flock 9
		: > held
		while [ ! -e release ]; do sleep 0.05; done
	) 3>&- >/dev/null 2>&1 &
	HOLDER=$!
	local i
	for ((i = 0; i < 200; i++)); do
		[ -e held ] && return 0
		sleep 0.05
	done
	echo "could not take the lock on $1" >&2
	return 1
}

release_lock() {
	if [ -n "${HOLDER-}" ]; then
		: > release
		wait "$HOLDER" || true
		HOLDER=
	fi
}

@test "the lock is an flock on .NAME.envsync-lock beside the target" {
	envapply t.fd d.envd
	[ -f .t.fd.envsync-lock ]
	# not held once envapply is done
	flock -n .t.fd.envsync-lock true
	cmp t.fd active.fd
}

@test "a second envapply while the lock is held: exit 5 at once, target unchanged" {
	hold_lock .t.fd.envsync-lock
	local t0 t1
	t0=$(now_ms)
	run --separate-stderr envapply t.fd d.envd
	t1=$(now_ms)
	[ "$status" -eq 5 ]
	[[ "$stderr" == "envapply: t.fd: another envapply holds the target (waited 0"*" s; see -w)" ]]
	[ $((t1 - t0)) -lt $((1000 * slow)) ]
	cmp t.fd standby.fd
	[ ! -e .t.fd.envsync-journal ]
	# --recover and --rollback take the lock too
	run envapply --recover t.fd
	[ "$status" -eq 5 ]
	run envapply --rollback t.fd
	[ "$status" -eq 5 ]
	cmp t.fd standby.fd
	release_lock
	envapply t.fd d.envd
	cmp t.fd active.fd
}

@test "-w 1: waits about a second for the lock, then exit 5" {
	hold_lock .t.fd.envsync-lock
	local t0 t1
	t0=$(now_ms)
	run --separate-stderr envapply -w 1 t.fd d.envd
	t1=$(now_ms)
	[ "$status" -eq 5 ]
	[[ "$stderr" == "envapply: t.fd: another envapply holds the target (waited 1"*" s; see -w)" ]]
	[ $((t1 - t0)) -ge 950 ]
	[ $((t1 - t0)) -lt $((4000 * slow)) ]
	cmp t.fd standby.fd
}

@test "-w: succeeds when the lock is released during the wait" {
	hold_lock .t.fd.envsync-lock
	local t0 t1 pid
	t0=$(now_ms)
	envapply -w 20 -v t.fd d.envd 2> apply.err 3>&- &
	pid=$!
	sleep 0.6
	# still waiting, target untouched
	kill -0 "$pid"
	cmp t.fd standby.fd
	release_lock
	wait "$pid"
	t1=$(now_ms)
	[ $((t1 - t0)) -ge 500 ]
	[ $((t1 - t0)) -lt $((15000 * slow)) ]
	cmp t.fd active.fd
	grep -q 'verified at the result' apply.err
}

@test "-J DIR: the lock is in DIR" {
	mkdir state
	hold_lock .t.fd.envsync-lock
	# the lock beside the target does not matter with -J
	envapply -J state t.fd d.envd
	cmp t.fd active.fd
	release_lock
	# in DIR, the files are keyed by the target's real path
	local lock
	lock=$(echo state/.t.fd.*.envsync-lock)
	[ -f "$lock" ]
	hold_lock "$lock"
	run envapply -J state --rollback t.fd
	[ "$status" -eq 5 ]
	cmp t.fd active.fd
	release_lock
	envapply -J state --rollback t.fd
	cmp t.fd standby.fd
}

@test "envapply runs started together take turns: one applies, the others find it done" {
	local i pids=() rc=0
	for i in 1 2 3 4; do
		envapply -w 30 -v t.fd d.envd 2> "run$i.err" 3>&- &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || rc=$?
	done
	[ "$rc" -eq 0 ]
	cmp t.fd active.fd
	[ "$(cat run*.err | grep -c 'verified at the result')" -eq 1 ]
	[ "$(cat run*.err | grep -c "already at the diff's result")" -eq 3 ]
	[ ! -e .t.fd.envsync-journal ]
	# a delta and a rollback racing: the target ends old or new, never mixed
	pids=()
	for i in 1 2 3 4 5 6; do
		envapply -w 30 t.fd d.envd 3>&- &
		pids+=($!)
		envapply -w 30 --rollback t.fd 3>&- 2>/dev/null &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || true
	done
	cmp -s t.fd active.fd || cmp -s t.fd standby.fd
	[ ! -e .t.fd.envsync-journal ]
}
