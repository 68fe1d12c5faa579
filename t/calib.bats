#!/usr/bin/env bats
# calib.bats: envjudge --calibrate measures through envapply's own code on
# scratch files beside the target, writes a calibration envjudge -c accepts,
# and never changes the target or leaves scratch files.
load common

@test "--calibrate --quick writes a valid calibration and leaves the target alone" {
	randfile target 1048576 9
	cp target saved
	run envjudge --calibrate target --quick -o cal
	[ "$status" -eq 0 ]
	[[ "$output" == *"for a 1.0 MiB item (full copy "*" ms), delta is faster below "* ]]
	cmp target saved
	[ -z "$(ls -A | grep -v -e '^target$' -e '^saved$' -e '^cal$')" ]
	grep -q '^envsync-calibration 1$' cal
	grep -q '^item_size 1048576$' cal
	grep -q '^block_size [0-9]' cal
	[ "$(grep -c '^point delta ' cal)" -ge 8 ]
	[ "$(grep -c '^point full ' cal)" -eq 2 ]
	# and envjudge -c uses it, printing both predictions
	cp target other
	poke other 10 ff
	envdiff target other > d.envd || true
	run envjudge -c cal -v -o judged.envd d.envd
	[ "$status" -eq 0 ]
	[[ "$output" == *"predicted delta "*" ms, full "*" ms, margin "*" ms -> delta"* ]]
}

@test "an interrupted calibration leaves no scratch files and the target unchanged" {
	randfile target 33554432 9
	cp target saved
	envjudge --calibrate target -o cal 2>err &
	pid=$!
	sleep 0.5
	kill -INT "$pid"
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 2 ]
	grep -q 'interrupted' err
	[ ! -e cal ]
	cmp target saved
	[ -z "$(ls -A | grep -v -e '^target$' -e '^saved$' -e '^err$')" ]
}

@test "an unwritable scratch location is a clear error" {
	mkdir ro
	randfile ro/target 65536 2
	if [ "$(id -u)" -eq 0 ]; then
		mount -t tmpfs -o size=1m tmpfs ro 2>/dev/null || skip "cannot mount a tmpfs here"
		randfile ro/target 65536 2
		mount -o remount,ro ro || { umount ro; skip "cannot remount read-only"; }
	else
		chmod a-w ro
	fi
	run envjudge --calibrate ro/target --quick -o cal
	[ "$(id -u)" -ne 0 ] || umount ro
	[ "$status" -eq 2 ]
	[[ "$output" == "envjudge: ro/target: cannot create a scratch directory beside it: "* ]]
	[ ! -e cal ]
}

@test "bad calibration files are refused naming the line" {
	printf 'x' > d
	good='envsync-calibration 1
block_size 4096
item_size 1048576
delta_fixed_ns 1000
delta_per_spot_ns 10
delta_per_byte_ns 1
delta_per_block_ns 100
full_fixed_ns 1000
full_per_byte_ns 2'
	printf '%s\n' "$good" > ok.cal
	envdiff d d | envjudge -c ok.cal -q
	for case in 'delta_per_byte_ns -1:6' 'delta_per_byte_ns nan:6' 'delta_per_byte_ns 1e300:6' \
		'block_size 0:2' 'colour blue:10' 'delta_per_byte_ns:6'; do
		line=${case##*:} bad=${case%:*}
		key=${bad%% *}
		printf '%s\n' "$good" | sed "s/^$key .*/$bad/" > bad.cal
		grep -q "^$bad\$" bad.cal || printf '%s\n' "$bad" >> bad.cal
		run envjudge -c bad.cal -q d.none
		[ "$status" -eq 2 ]
		[[ "$output" == "envjudge: bad.cal: line $line: "* ]] || { echo "$bad -> $output"; false; }
	done
	printf '%s\n' "$good" | sed 1d > nohdr.cal
	run envjudge -c nohdr.cal -q d.none
	[ "$status" -eq 2 ]
	[[ "$output" == *"not an envsync calibration"* ]]
	printf '%s\n' "$good" | grep -v full_per_byte > missing.cal
	run envjudge -c missing.cal -q d.none
	[ "$status" -eq 2 ]
	[[ "$output" == *"missing key 'full_per_byte_ns'"* ]]
	run envjudge -c /nonexistent.cal -q d.none
	[ "$status" -eq 2 ]
}
