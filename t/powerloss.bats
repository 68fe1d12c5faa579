#!/usr/bin/env bats
# powerloss.bats: a power loss at any instant of an apply leaves the target
# fully old or fully new once recovered (issue 7 item 2).
#
# crash.bats kills envapply at every call, but a killed process loses nothing
# it has written: the kernel still holds it. A power loss also drops whatever
# had not been made durable, in any combination the disk and file system
# allow. So here envapply runs once under t/shim/recshim.c, which logs every
# write, truncate, create, rename, link, unlink and completed fsync in the
# target's directory (with the written bytes), and t/pwrreplay rebuilds from
# a snapshot of the directory taken before the apply each state a power loss
# could leave, under this model (documented in detail in t/pwrreplay.c):
#  - a write or truncate is durable once an fsync of its file has completed;
#  - a create, rename, link or unlink is durable once an fsync of the
#    directory has completed;
#  - nothing is assumed about the order in which the rest reaches the disk.
# For every fsync boundary k (fsyncs 1..k completed, everything up to fsync
# k+1 issued) the operations not yet durable are kept in these subsets: none,
# all, each one alone, all but each one, and each prefix in issue order.
# That is what the issue asks (none, all, each single one) and more, and
# it includes the operations issued before fsync k that fsync k did not
# cover (a rename whose directory was not fsync'd yet). Identical states
# are checked once.
#
# Recorded runs: delta and full applies on env images and raw files, in
# place through the journal and built beside and renamed, fresh or over an
# earlier apply's state files; a recovery (from a committed journal) and
# rollbacks, themselves cut by the power loss.
#
# In each state (check_state below): `envapply --recover` must succeed and
# leave the target byte-identical to the old or the new file with no
# journal or new file left; the same sync run again must then end at the
# new file (finishing the job, or saying it is already done); and a
# --rollback after it must give exactly the old file or refuse, leaving the
# new one (after a rollback cut short: a second rollback gives exactly the
# other file or refuses). pwrreplay -c first checks that replaying the whole
# log gives exactly the directory envapply left, so a write the shim missed
# cannot make the test pass vacuously; and the last test shows the replay
# catches an fsync taken out of the log. (Builds of envapply with the
# journal's fsync, the directory fsync after its rename, the target's fsync
# after the replay or the new file's fsync before its rename taken out each
# fail every scenario that depends on it.)
load common

setup_file() {
	export SHIM="$BATS_FILE_TMPDIR/recshim.so"
	cc -shared -fPIC -O1 -o "$SHIM" "$ES_SRCDIR/t/shim/recshim.c" -ldl
	export REPLAY="$ES_BUILDDIR/t/pwrreplay"
	# an ASan-built envapply must accept a preloaded library ahead of its runtime
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}

# Run by pwrreplay in each replayed state (cwd: the state's directory), with
# OLD, NEW, DIFF, SRC (empty or the -s file), TALLY, ERR and MODE in the
# environment. Exported, so it says why it fails instead of relying on errexit.
# MODE apply: the recorded run was an apply from OLD to NEW of DIFF.
# MODE rollback: the recorded run was a --rollback from OLD (the applied
# file) to NEW (the file before that apply).
check_state() {
	local side f opt=()
	[ -z "$SRC" ] || opt=(-s "$SRC")
	if ! envapply --recover target 2> "$ERR"; then
		echo "envapply --recover failed: $(cat "$ERR")"
		return 1
	fi
	if cmp -s target "$OLD"; then
		side=old
	elif cmp -s target "$NEW"; then
		side=new
	else
		echo "after envapply --recover the target is neither old nor new"
		return 1
	fi
	for f in .target.envsync-journal .target.envsync-journal.new .target.envsync-new; do
		if [ -e "$f" ]; then
			echo "after envapply --recover, $f is left"
			return 1
		fi
	done
	echo "$side" >> "$TALLY"
	if [ "$MODE" = rollback ]; then
		# a rollback, run again, goes exactly to the other side or refuses
		if envapply --rollback target 2> "$ERR"; then
			if { [ $side = old ] && ! cmp -s target "$NEW"; } ||
			   { [ $side = new ] && ! cmp -s target "$OLD"; }; then
				echo "a second --rollback (target $side before it) did not give the other file"
				return 1
			fi
		elif ! cmp -s target "$([ $side = old ] && echo "$OLD" || echo "$NEW")"; then
			echo "a refused --rollback changed the target: $(cat "$ERR")"
			return 1
		fi
		return 0
	fi
	# the sync, run again, finishes the job or finds it done
	if ! envapply "${opt[@]}" target "$DIFF" 2> "$ERR" || ! cmp -s target "$NEW"; then
		echo "the next envapply did not end at the new file (target $side after recovery): $(cat "$ERR")"
		return 1
	fi
	for f in .target.envsync-journal .target.envsync-journal.new .target.envsync-new; do
		if [ -e "$f" ]; then
			echo "after the next envapply, $f is left"
			return 1
		fi
	done
	# the state files left by the power loss and the runs since are coherent:
	# a rollback goes exactly to the old file, or refuses and leaves the new
	if envapply --rollback target 2> "$ERR"; then
		cmp -s target "$OLD" || { echo "--rollback gave neither the old nor the new file"; return 1; }
	else
		cmp -s target "$NEW" || { echo "a refused --rollback changed the target: $(cat "$ERR")"; return 1; }
	fi
}
export -f check_state

# record ARG...: run `envapply ARG...` once under the recording shim in live/
# (prepared by the caller), snapshotting the directory first into snap/.
record() {
	mkdir -p snap state
	cp -a live/. snap/
	rm -f log log.data
	(cd live && PWR_DIR=. PWR_LOG=../log LD_PRELOAD="$SHIM" envapply "$@")
}

# replay_check OLD NEW [DIFF [SOURCE]]: replay the recorded run and check every
# state (check_state); print a tally.
replay_check() {
	export OLD=$PWD/$1 NEW=$PWD/$2 DIFF=${3:+$PWD/$3} SRC=${4:+$PWD/$4}
	export TALLY=$PWD/tally ERR=$PWD/err MODE=${MODE:-apply}
	rm -f tally
	run "$REPLAY" -c live log snap state bash -c check_state
	echo "$output"
	[ "$status" -eq 0 ]
	n_old=$(grep -c '^old$' tally || true)
	n_new=$(grep -c '^new$' tally || true)
	echo "# $output; after recovery $n_old old, $n_new new" >&3
}

# power_loss OLD NEW DIFF [SOURCE]: record the apply of DIFF to a copy of OLD
# (unless the test put a target in live/ already), then replay and check.
power_loss() {
	mkdir -p live
	[ -e live/target ] || cp "$1" live/target
	record ${4:+-s "$PWD/$4"} target "$PWD/$3"
	cmp live/target "$2"
	replay_check "$@"
	# a power loss before the commit point leaves old, after it new
	[ "$n_old" -gt 0 ] && [ "$n_new" -gt 0 ]
}

make_images() { # BIOS-SIZE
	randfile s.bios "$1" 7
	cp s.bios a.bios
	poke a.bios 0 ff
	poke a.bios 4000 00112233445566778899aabbccddeeff00
	poke a.bios 70000 0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20
	poke a.bios $(($1 - 1)) 01
	printf 'a=1\n' > s.cfg
	printf 'a=2\n' > a.cfg
	envdump -r 1 bios=s.bios cfg=s.cfg -o old.env
	envdump -r 2 bios=a.bios cfg=a.cfg -o new.env
}

@test "image, delta in place through the journal" {
	make_images 131072
	envdiff old.env new.env | envjudge -r 1 > d.envd || true
	envdiff -t d.envd | grep -q 'delta$'
	power_loss old.env new.env d.envd
}

@test "image, judged full (-t 0), copied in place through the journal" {
	# 192 KiB: the journal spans several 64 KiB writes and records
	make_images 196608
	envdiff old.env new.env | envjudge -t 0 > d.envd || true
	envdiff -t d.envd | grep -q 'bios.*full$'
	power_loss old.env new.env d.envd new.env
}

@test "image whose layout changes, delta: built beside and renamed" {
	make_images 131072
	printf 'new item\n' > extra
	envdump -r 2 bios=a.bios extra=extra -o grown.env
	envdiff old.env grown.env > d.envd || true
	power_loss old.env grown.env d.envd
}

@test "image whose layout changes, judged full (-t 0): built beside and renamed" {
	make_images 131072
	printf 'new item\n' > extra
	envdump -r 2 bios=a.bios extra=extra -o grown.env
	envdiff old.env grown.env | envjudge -t 0 > d.envd || true
	power_loss old.env grown.env d.envd grown.env
}

@test "raw file, delta in place, growing" {
	randfile old.fd 100000 3
	cp old.fd new.fd
	poke new.fd 5 abcdef
	poke new.fd 70000 0011223344556677889900112233445566778899
	printf 'tail' >> new.fd
	envdiff old.fd new.fd | envjudge -r 1 > d.envd || true
	power_loss old.fd new.fd d.envd
}

@test "raw file, delta in place, shrinking" {
	randfile old.fd 100000 3
	head -c 80000 old.fd > new.fd
	poke new.fd 5 abcdef
	envdiff old.fd new.fd | envjudge -r 1 > d.envd || true
	power_loss old.fd new.fd d.envd
}

@test "raw file, delta: records on neighbouring pages are written as one" {
	# lib/journal.c joins records into one write while they lie on the same
	# or the next page, writing the bytes between them back as they are:
	# spots at 100, 1500 (page 0), 5000 (1) and 9000 (2) go in one write of
	# bytes 100-9000; 30000 (page 7: three untouched pages before it) and
	# 60000 in one each. A power loss must still leave old or new.
	randfile old.fd 65536 3
	cp old.fd new.fd
	for at in 100 1500 5000 9000 30000 60000; do xorpoke new.fd $at 5a; done
	envdiff old.fd new.fd | envjudge -r 1 > d.envd || true
	mkdir -p live
	cp old.fd live/target
	record target "$PWD/d.envd"
	cmp live/target new.fd
	# the shim may log the directory more than once (under valgrind it does)
	ino=$(awk '$1 == "I" && $3 == "target" { print $2; exit }' log)
	run awk -v i="$ino" '$1 == "W" && $2 == i { print $3, $4 }' log
	echo "$output"
	[ "$output" = "$(printf '100 8901\n30000 1\n60000 1')" ]
	replay_check old.fd new.fd d.envd
	[ "$n_old" -gt 0 ] && [ "$n_new" -gt 0 ]
}

@test "raw file, judged full (-t 0): temp, fsync, rename" {
	randfile old.fd 100000 3
	randfile new.fd 90000 4
	envdiff old.fd new.fd | envjudge -t 0 > d.envd || true
	power_loss old.fd new.fd d.envd new.fd
}

@test "raw file, full, over an earlier apply's state files" {
	# the rollback link and the last journal of an earlier apply are replaced
	randfile first.fd 100000 2
	randfile old.fd 100000 3
	randfile new.fd 90000 4
	envdiff first.fd old.fd | envjudge -t 0 > d1.envd || true
	mkdir live
	cp first.fd live/target
	envapply -s old.fd live/target d1.envd
	[ -e live/.target.envsync-prev ] && [ -e live/.target.envsync-last ]
	envdiff old.fd new.fd | envjudge -t 0 > d.envd || true
	power_loss old.fd new.fd d.envd new.fd
}

@test "raw file, delta in place, recording the target's verified state" {
	# envapply records a target it read in full (lib/vstate.c) only once the
	# file has been still for ES_VSTATE_SETTLE_NS (1 s): a slow run, such as
	# one under valgrind, writes that record in the middle of the apply, so
	# its writes must be ones the recorder sees and the replay models
	randfile old.fd 100000 3
	cp old.fd new.fd
	poke new.fd 70000 0011223344556677889900112233445566778899
	envdiff old.fd new.fd | envjudge -r 1 > d.envd || true
	mkdir live
	cp old.fd live/target
	sleep 1.2
	power_loss old.fd new.fd d.envd
	grep -q '^R [0-9]* .target.envsync-verified.new .target.envsync-verified$' log || { cat log; false; }
}

@test "image, delta in place, over an earlier apply's journal" {
	make_images 131072
	randfile z.bios 131072 9
	envdump -r 0 bios=z.bios cfg=s.cfg -o first.env
	mkdir live
	cp first.env live/target
	envdiff first.env old.env | envapply live/target
	[ -e live/.target.envsync-last ]
	envdiff old.env new.env | envjudge -r 1 > d.envd || true
	power_loss old.env new.env d.envd
}

@test "recovery itself, cut by a power loss, is finished by the next recovery" {
	# live/ as a power loss right after the commit point leaves it: the
	# target untouched and the journal in place (a journal is byte for byte
	# what is kept as .envsync-last once applied)
	make_images 131072
	envdiff old.env new.env | envjudge -r 1 > d.envd || true
	mkdir "done" live
	cp old.env done/target
	envapply done/target d.envd
	cp old.env live/target
	cp done/.target.envsync-last live/.target.envsync-journal
	record --recover target
	cmp live/target new.env
	replay_check old.env new.env d.envd
	# past the commit point nothing may go back to old
	[ "$n_old" -eq 0 ] && [ "$n_new" -gt 0 ]
}

@test "raw file: recovery itself, cut by a power loss, is finished by the next recovery" {
	randfile old.fd 100000 3
	head -c 80000 old.fd > new.fd
	poke new.fd 5 abcdef
	envdiff old.fd new.fd | envjudge -r 1 > d.envd || true
	mkdir "done" live
	cp old.fd done/target
	envapply done/target d.envd
	cp old.fd live/target
	cp done/.target.envsync-last live/.target.envsync-journal
	record --recover target
	cmp live/target new.fd
	replay_check old.fd new.fd d.envd
	[ "$n_old" -eq 0 ] && [ "$n_new" -gt 0 ]
}

@test "rollback in place (inverted journal), cut by a power loss" {
	make_images 131072
	envdiff old.env new.env | envjudge -r 1 > d.envd || true
	mkdir live
	cp old.env live/target
	envapply live/target d.envd
	record --rollback target
	cmp live/target old.env
	MODE=rollback replay_check new.env old.env
	[ "$n_old" -gt 0 ] && [ "$n_new" -gt 0 ]
}

@test "rollback of a renamed apply (swap by renames), cut by a power loss" {
	randfile old.fd 100000 3
	randfile new.fd 90000 4
	envdiff old.fd new.fd | envjudge -t 0 > d.envd || true
	mkdir live
	cp old.fd live/target
	envapply -s new.fd live/target d.envd
	record --rollback target
	cmp live/target old.fd
	MODE=rollback replay_check new.fd old.fd
	[ "$n_old" -gt 0 ] && [ "$n_new" -gt 0 ]
}

@test "the replay catches an fsync taken out of the log" {
	# As if envapply renamed its journal into place without fsyncing it, or
	# wrote the target before the rename was durable: some replayed state
	# must then fail the check. Proves the harness can fail.
	make_images 131072
	envdiff old.env new.env | envjudge -r 1 > d.envd || true
	export OLD=$PWD/old.env NEW=$PWD/new.env DIFF=$PWD/d.envd SRC=
	export TALLY=$PWD/tally ERR=$PWD/err MODE=apply
	mkdir live
	cp old.env live/target
	record target "$DIFF"
	# the journal's inode: the one created as .target.envsync-journal.new
	ino=$(awk '$1 == "C" && $3 == ".target.envsync-journal.new" { print $2; exit }' log)
	[ -n "$ino" ]
	cp log full.log
	awk -v i="$ino" '!($1 == "S" && $2 == i)' full.log > log
	[ "$(wc -l < log)" -lt "$(wc -l < full.log)" ]
	run "$REPLAY" log snap state bash -c check_state
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"the check failed"* ]]
	# the first directory fsync (the one that makes the journal's rename
	# durable before the target is written)
	awk '$1 == "D" && !done { done = 1; next } { print }' full.log > log
	run "$REPLAY" log snap state bash -c check_state
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"the check failed"* ]]
}
