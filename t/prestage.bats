#!/usr/bin/env bats
# prestage.bats: contrib/envsync-prestage (S300): an unchanged revision does
# nothing, a new one is staged with its diff, overlapping runs serialize, and a
# failed run leaves the previous staged state as it was.
load common

setup_file() {
	sh "$ES_SRCDIR/samples/make-samples" "$BATS_FILE_TMPDIR/samples" >/dev/null
}

setup() {
	cd "$BATS_TEST_TMPDIR" || exit 1
	cp "$BATS_FILE_TMPDIR"/samples/*.env "$BATS_FILE_TMPDIR"/samples/*.fd .
	cp standby.env target.env
	envrev -s 43 -o active43.env active.env
	# logger stand-in: the log lines land in $LOG.
	mkdir fakebin
	LOG=$BATS_TEST_TMPDIR/log
	printf '#!/bin/sh\nprintf "%%s\\n" "$*" >> "%s"\n' "$LOG" > fakebin/logger
	chmod +x fakebin/logger
	PATH=$BATS_TEST_TMPDIR/fakebin:$PATH
	PRESTAGE=$ES_SRCDIR/contrib/envsync-prestage
}

# The staging directory holds exactly the lock, the image and the diff; the
# diff leads from TARGET to the staged image, which equals IMAGE.
staged_ok() { # STAGING TARGET IMAGE
	[ "$(ls -A "$1" | tr '\n' ' ')" = ".lock staged.env staged.envd " ] || {
		ls -A "$1" >&2
		return 1
	}
	cmp "$1/staged.env" "$3"
	cp "$2" check.target
	envjudge "$1/staged.envd" | envapply -J . -s "$1/staged.env" check.target
	cmp check.target "$3"
}

# Invert the byte at OFFSET of FILE.
flipbyte() { # FILE OFFSET
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	# shellcheck disable=SC2059 # the format is a computed octal escape: one byte
	printf "\\$(printf %o $((255 - b)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

fingerprint() { # STAGING
	stat -c '%n %i %Y %s' "$1/staged.env" "$1/staged.envd"
	cksum "$1/staged.env" "$1/staged.envd"
}

@test "a new revision is staged with its diff and logged in one line" {
	run "$PRESTAGE" active.env stg target.env
	[ "$status" -eq 0 ]
	staged_ok stg target.env active.env
	[ "$(envrev stg/staged.env)" = 42 ]
	[ "$(wc -l < "$LOG")" -eq 1 ]
	grep -q -- '-t envsync-prestage -p user.info -- staged revision 42 (was none): 3 of 3 items changed, 5 spots, 45 differing bytes from the target.s revision 41; decision delta' "$LOG"
}

@test "an unchanged revision does nothing" {
	"$PRESTAGE" active.env stg target.env
	before=$(fingerprint stg)
	sleep 1.1
	run "$PRESTAGE" active.env stg target.env
	[ "$status" -eq 0 ]
	[ "$(fingerprint stg)" = "$before" ]
	grep -q 'revision 42 unchanged; nothing to do' "$LOG"
	[ "$(wc -l < "$LOG")" -eq 2 ]
}

@test "a newer revision replaces the staged one" {
	"$PRESTAGE" active.env stg target.env
	run "$PRESTAGE" active43.env stg target.env
	[ "$status" -eq 0 ]
	staged_ok stg target.env active43.env
	grep -q 'staged revision 43 (was revision 42)' "$LOG"
}

@test "when the target moved, only the diff is recomputed" {
	"$PRESTAGE" active.env stg target.env
	ino=$(stat -c %i stg/staged.env)
	cp active.env target.env
	run "$PRESTAGE" active.env stg target.env
	[ "$status" -eq 0 ]
	[ "$(stat -c %i stg/staged.env)" = "$ino" ]
	staged_ok stg target.env active.env
	grep -q "revision 42 unchanged; diff from the target's revision 42 recomputed: 0 of 3 items changed" "$LOG"
}

@test "raw images are staged too, and left alone when unchanged" {
	run "$PRESTAGE" active.fd stg standby.fd
	[ "$status" -eq 0 ]
	staged_ok stg standby.fd active.fd
	before=$(fingerprint stg)
	run "$PRESTAGE" active.fd stg standby.fd
	[ "$status" -eq 0 ]
	[ "$(fingerprint stg)" = "$before" ]
	grep -q 'raw image unchanged; nothing to do' "$LOG"
}

@test "a calibration decides the logged decision" {
	cal=$BATS_FILE_TMPDIR/full.cal
	# A medium on which a delta costs far more than a full copy.
	cat > "$cal" <<-EOF
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
	run "$PRESTAGE" -c "$cal" active.env stg target.env
	[ "$status" -eq 0 ]
	grep -q 'decision full$' "$LOG"
}

@test "concurrent runs serialize and leave a consistent staging area" {
	for i in 1 2 3 4 5 6 7 8; do
		if [ $((i % 2)) -eq 0 ]; then a=active.env; else a=active43.env; fi
		"$PRESTAGE" "$a" stg target.env 2>/dev/null &
	done
	wait
	[ "$(wc -l < "$LOG")" -eq 8 ]
	run ! grep -v -e 'user.info' "$LOG"
	case $(envrev stg/staged.env) in
	42) staged_ok stg target.env active.env ;;
	43) staged_ok stg target.env active43.env ;;
	*) false ;;
	esac
}

@test "a run waits for the lock, and gives up after -w with exit 5" {
	"$PRESTAGE" active.env stg target.env
	before=$(fingerprint stg)
	flock stg/.lock sleep 3 &
	sleep 0.3
	run "$PRESTAGE" -w 1 active43.env stg target.env
	[ "$status" -eq 5 ]
	[ "$(fingerprint stg)" = "$before" ]
	grep -q 'held the lock for more than 1 s; nothing done' "$LOG"
	wait
}

@test "a corrupt active image fails and leaves the staged state intact" {
	"$PRESTAGE" active.env stg target.env
	before=$(fingerprint stg)
	flipbyte active43.env 5000
	run "$PRESTAGE" active43.env stg target.env
	[ "$status" -eq 2 ]
	[ "$(fingerprint stg)" = "$before" ]
	staged_ok stg target.env active.env
	grep -q "user.err -- .*active43.env.*CRC32 mismatch" "$LOG"
}

@test "a corrupt target fails the diff and leaves the staged state intact" {
	"$PRESTAGE" active.env stg target.env
	before=$(fingerprint stg)
	cp target.env good.env
	flipbyte target.env 5000
	run "$PRESTAGE" active43.env stg target.env
	[ "$status" -eq 2 ]
	[ "$(fingerprint stg)" = "$before" ]
	staged_ok stg good.env active.env
	grep -q "user.err -- envdiff target.env .*CRC32 mismatch" "$LOG"
}

@test "a missing active image is an error, logged" {
	run "$PRESTAGE" nosuch.env stg target.env
	[ "$status" -eq 2 ]
	grep -q 'user.err -- nosuch.env: not readable' "$LOG"
	run "$PRESTAGE" onlyone
	[ "$status" -eq 2 ]
	[[ "$output" == usage:* ]]
}

@test "-J records the target's verified state for the failover apply; a target at neither side is a warning" {
	mkdir state
	sleep 1.1 # a file changed within the last second gets no record
	run "$PRESTAGE" -J state active.env stg target.env
	[ "$status" -eq 0 ]
	staged_ok stg target.env active.env
	rec=$(ls state/.target.env.*.envsync-verified)
	grep -q "^envsync-verified 1 .* ino=$(stat -c %i target.env) " "$rec"
	run ! grep -q 'user.warn' "$LOG"
	# the apply at failover then uses the record, and lands at the image
	envjudge stg/staged.envd | envapply -J state -s stg/staged.env target.env
	cmp target.env active.env
	# a target that is at neither side of the staged diff: warned, exit 0
	cp standby.env target.env
	flipbyte target.env $(($(stat -c %s target.env) - 1))
	run "$PRESTAGE" -J state active.env stg target.env
	[ "$status" -eq 0 ]
	grep -q 'user.warn -- envapply --check target.env: ' "$LOG"
}
