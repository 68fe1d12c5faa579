#!/usr/bin/env bats
# efivarfs.bats: efivarfs-style directories (one file per UEFI variable, named
# Name-GUID, holding 4 bytes of attributes then the data), on plain
# directories: envdump -e captures one item per file; envapply brings a
# directory from a diff's base to its result, variable by variable, through a
# journal; a kill at every call leaves every variable and the whole set old or
# new once recovered; the immutable attribute; bad names.
load common
bats_require_minimum_version 1.5.0

G=8be4df61-93ca-11d2-aa0d-00e098032b8c # EFI_GLOBAL_VARIABLE
L=4a67b082-0a4c-41cf-b6c7-440b29bb8c4f # systemd-boot's loader variables

setup_file() {
	export SHIM="$BATS_FILE_TMPDIR/crashshim.so"
	cc -shared -fPIC -O1 -o "$SHIM" "$ES_SRCDIR/t/shim/crashshim.c" -ldl
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}

# A failed test must not leave immutable files that bats cannot remove.
teardown() {
	chattr -R -i "$BATS_TEST_TMPDIR" 2>/dev/null || true
}

# The standby's variables (std/) and the active's (act/): Timeout and ConOut
# changed in place, BootOrder grown, Boot0001 added, Lang deleted, Boot0000
# and the loader's variable the same.
make_dirs() {
	mkdir std act
	printf '\x07\x00\x00\x00\x05\x00' > std/Timeout-$G
	printf '\x07\x00\x00\x00\x00\x00' > act/Timeout-$G
	printf '\x07\x00\x00\x00\x00\x00\x01\x00' > std/BootOrder-$G
	printf '\x07\x00\x00\x00\x01\x00\x00\x00\x01\x00' > act/BootOrder-$G
	printf '\x07\x00\x00\x00\x01\x00\x00\x00\x2c\x00L\x00i\x00n\x00u\x00x\x00\x00\x00' > std/Boot0000-$G
	cp std/Boot0000-$G act/
	printf '\x07\x00\x00\x00\x01\x00\x00\x00\x2c\x00s\x00h\x00e\x00l\x00l\x00\x00\x00' > act/Boot0001-$G
	printf '\x07\x00\x00\x00eng' > std/Lang-$G
	printf '\x06\x00\x00\x00a\x00u\x00t\x00o\x00\x00\x00' > std/LoaderEntryDefault-$L
	cp std/LoaderEntryDefault-$L act/
	randfile conout 300 5
	{ printf '\x07\x00\x00\x00'; cat conout; } > std/ConOut-$G
	cp std/ConOut-$G act/
	poke act/ConOut-$G 40 0102030405060708090a0b0c
	poke act/ConOut-$G 250 ff
	envdump -r 1 -e std -o std.env
	envdump -r 2 -e act -o act.env
	cp -a std std.orig
}

# The state files envapply keeps beside DIR, one a line.
state_files() { # DIR
	(cd "$(dirname "$1")" && { ls -A | grep -F ".$(basename "$1").envsync-" || true; })
}

@test "envdump -e: one item per variable file, named as the file, in name order" {
	make_dirs
	run envdump -l std.env
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "revision 1" ]
	[ "${#lines[@]}" -eq 7 ]
	printf '%s\n' "${lines[@]:1}" | awk '{print $3}' > names
	(cd std && ls | LC_ALL=C sort) | diff - names
	for f in std/*; do
		envdump -x "$(basename "$f")" std.env | cmp - "$f"
	done
	# deterministic: the same directory gives the same image
	envdump -r 1 --efivarfs=std | cmp - std.env
	# --rev-from keeps the revision while nothing changed, bumps it after
	envdump --rev-from std.env -e std -o again.env
	cmp again.env std.env
	envdump --rev-from std.env -e act | envdump -l | head -1 | grep -qx 'revision 2'
}

@test "envdump -e: an empty directory is an image without items" {
	mkdir empty
	envdump -r 3 -e empty -o e.env
	run envdump -l e.env
	[ "$output" = "revision 3" ]
}

@test "envdump -e: a file that is not a Name-GUID variable is a clear error naming it" {
	bad() { # FILE-IN-DIR PATTERN
		rm -rf d
		mkdir d
		printf '\x07\x00\x00\x00\x01' > d/Timeout-$G
		if [ "$1" = sub-$G ]; then mkdir "d/$1"; else printf '\x07\x00\x00\x00x' > "d/$1"; fi
		run --separate-stderr envdump -r 1 -e d -o out.env
		[ "$status" -eq 2 ] || { echo "$1: status $status" >&2; return 1; }
		[ "${#stderr_lines[@]}" -eq 1 ]
		[[ "$stderr" == "envdump: d/$1: "$2 ]] || { echo "$1: $stderr" >&2; return 1; }
		[ ! -e out.env ]
	}
	local form='not an efivarfs variable name (Name-GUID, the GUID as 8-4-4-4-12 lowercase hex digits)'
	bad README "$form"
	bad Timeout-8BE4DF61-93CA-11D2-AA0D-00E098032B8C "$form"
	bad -$G "$form"
	bad Timeout-8be4df61-93ca-11d2-aa0d-00e098032b8 "$form"
	bad Timeout_$G "$form"
	bad .Timeout-$G.envsync-new "$form"
	bad "Boot Next-$G" "item name has a forbidden byte 0x20 at position 4"
	bad "Boot=Next-$G" "item name has a forbidden byte 0x3d at position 4"
	bad "ThisVariableNameIsMuchTooLong-$G" "item name longer than 64 bytes"
	bad sub-$G "not a regular file"
	rm -rf d && mkdir d && printf '\x07\x00' > d/Short-$G
	run --separate-stderr envdump -e d
	[ "$status" -eq 2 ]
	[ "$stderr" = "envdump: d/Short-$G: 2 bytes: a variable file holds 4 bytes of attributes and at most 4194304 bytes in all" ]
	run --separate-stderr envdump -e nonesuch
	[ "$status" -eq 2 ]
	[ "$stderr" = "envdump: nonesuch: cannot open directory: No such file or directory" ]
	run envdump -e d Timeout=d/Short-$G
	[ "$status" -eq 2 ]
	[[ "$output" == *"-e takes no operands"* ]]
}

@test "capture, diff, judge, apply: changed, grown, added and deleted variables; the result is the active directory" {
	make_dirs
	run envdiff --stat std.env act.env
	[ "$status" -eq 1 ]
	envdiff std.env act.env | envjudge > j.envd
	run --separate-stderr envapply -v std j.envd
	[ "$status" -eq 0 ]
	[ "${stderr_lines[0]}" = "std: revision 1 -> 2 (a directory: checked by content)" ]
	[[ "$stderr" == *"Boot0001-$G: added, 22 bytes"* ]]
	[[ "$stderr" == *"BootOrder-$G: resized, 8 -> 10 bytes"* ]]
	[[ "$stderr" == *"ConOut-$G: changed, 304 bytes"* ]]
	[[ "$stderr" == *"Lang-$G: removed, 7 bytes"* ]]
	[[ "$stderr" == *"Timeout-$G: changed, 6 bytes"* ]]
	[[ "$stderr" != *"Boot0000"* ]]
	[ "${stderr_lines[-1]}" = "envapply: std: verified at the result (every variable's size and CRC32)" ]
	diff -r std act
	# the state stays beside the directory, none of it inside
	[ "$(state_files std | tr '\n' ' ')" = ".std.envsync-last .std.envsync-lock " ]
	[ -z "$(ls -A std | grep -v -- "-$G\$" | grep -v -- "-$L\$")" ]
	# the capture of the result is the active's image, revision aside
	envdump -r 2 -e std | cmp - act.env
	# again: already there
	run --separate-stderr envapply -v std j.envd
	[ "$status" -eq 0 ]
	[ "$stderr" = "envapply: std: already at the diff's result, nothing to do" ]
}

@test "items judged full need no SOURCE: every changed variable is rebuilt from the diff and written whole" {
	make_dirs
	envdiff std.env act.env | envjudge -t 0 > full.envd || true
	envdiff -t full.envd | grep -q 'full$'
	envapply std full.envd
	diff -r std act
}

@test "rollback puts the old variables back; a second rollback redoes the apply" {
	make_dirs
	envdiff std.env act.env > d.envd || true
	envapply std d.envd
	run --separate-stderr envapply -v --rollback std
	[ "$status" -eq 0 ]
	[ "$stderr" = "envapply: std: rolled back to before the last apply" ]
	diff -r std std.orig
	envapply --rollback std
	diff -r std act
	# changed since: refused
	printf '\x07\x00\x00\x00\x09\x00' > std/Timeout-$G
	run --separate-stderr envapply --rollback std
	[ "$status" -eq 4 ]
	[[ "$stderr" == "envapply: std: not at the last apply's result, refusing to roll back: Timeout-$G has 6 bytes with CRC32 "* ]]
}

@test "dry run: the changed variables, and nothing written" {
	make_dirs
	envdiff std.env act.env > d.envd || true
	run --separate-stderr envapply -n std d.envd
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 6 ]
	[ "${lines[0]}" = "std: revision 1 -> 2 (a directory: checked by content)" ]
	[ "${lines[1]}" = "Boot0001-$G: added, 22 bytes" ]
	diff -r std std.orig
	[ -z "$(state_files std)" ]
}

@test "a directory at neither the base nor the result: exit 4 naming the nearer side and its first difference, nothing written" {
	make_dirs
	envdiff std.env act.env > d.envd || true
	check4() { # PATTERN
		run --separate-stderr envapply std d.envd
		[ "$status" -eq 4 ]
		[[ "$stderr" == "envapply: std: is neither at the diff's base nor at its result (wrong target or stale diff d.envd): "$1 ]] ||
			{ echo "$stderr" >&2; return 1; }
		[ ! -e .std.envsync-journal ]
	}
	printf '\x07\x00\x00\x00\x09\x00' > std/Timeout-$G
	check4 "1 difference from its base, the first: Timeout-$G has 6 bytes with CRC32 *, not 6 bytes with CRC32 *"
	cp std.orig/Timeout-$G std/
	rm std/Boot0000-$G
	check4 "1 difference from its base, the first: Boot0000-$G is missing"
	cp std.orig/Boot0000-$G std/
	printf '\x07\x00\x00\x00\x01' > std/Extra-$G
	mkdir std/Dir-$G
	check4 "2 differences from its base, the first: Dir-$G is not one of its variables"
	rmdir std/Dir-$G
	rm std/Extra-$G
	diff -r std std.orig
	[ ! -e .std.envsync-last ]
	envapply std d.envd
	diff -r std act
	printf '\x07\x00\x00\x00\x09\x00' > std/Timeout-$G
	check4 "1 difference from its result, the first: Timeout-$G has 6 bytes with CRC32 *"
}

@test "what a directory cannot take: a raw diff, items that are not Name-GUID variables" {
	make_dirs
	envdiff std/Timeout-$G act/Timeout-$G > raw.envd || true
	run --separate-stderr envapply std raw.envd
	[ "$status" -eq 2 ]
	[ "$stderr" = "envapply: std: is a directory, which takes a diff of two env images (envdump --efivarfs), not of raw files as raw.envd is" ]
	printf 'x' > a
	printf 'y' > b
	envdump -r 1 settings=a -o a.env
	envdump -r 2 settings=b -o b.env
	envdiff a.env b.env > s.envd || true
	run --separate-stderr envapply std s.envd
	[ "$status" -eq 2 ]
	[[ "$stderr" == "envapply: s.envd: item 'settings': not an efivarfs variable name"* ]]
	diff -r std std.orig
}

@test "-J keeps the journal and the lock in another directory" {
	make_dirs
	mkdir state
	envdiff std.env act.env > d.envd || true
	envapply -J state std d.envd
	diff -r std act
	[ -z "$(state_files std)" ]
	ls -A state | grep -Eq '^\.std\.[0-9a-f]{8}\.envsync-last$'
	envapply -J state --rollback std
	diff -r std std.orig
}

@test "TARGET given as '.': the state stays outside the directory; --recover; a held lock is exit 5" {
	make_dirs
	envdiff std.env act.env > d.envd || true
	(cd std && envapply . ../d.envd)
	diff -r std act
	[ "$(state_files std | tr '\n' ' ')" = ".std.envsync-last .std.envsync-lock " ]
	run --separate-stderr envapply -v --recover std
	[ "$status" -eq 0 ]
	[ "$stderr" = "envapply: std: no interrupted apply" ]
	command -v flock >/dev/null || skip "no flock"
	flock .std.envsync-lock sleep 2 &
	sleep 0.5
	run --separate-stderr envapply --rollback std
	wait
	[ "$status" -eq 5 ]
	[ "$stderr" = "envapply: std: another envapply holds the target (waited 0.0 s; see -w)" ]
	diff -r std act
	envapply --rollback std
	diff -r std std.orig
	run --separate-stderr envapply --rollback -J . std
	[ "$status" -eq 2 ]
	[[ "$stderr" == "envapply: std: no previous apply to roll back ("* ]]
}

@test "each variable is written by one write() of its attributes and data" {
	command -v strace >/dev/null || skip "no strace"
	make_dirs
	envdiff std.env act.env > d.envd || true
	# (LeakSanitizer cannot run under ptrace)
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -e trace=openat,write -o trace envapply std d.envd
	diff -r std act
	# the new file of ConOut (304 bytes): opened, then written once, whole
	fd=$(sed -n "s/.*openat(.*\.ConOut-$G\.envsync-new\", O_WRONLY|O_CREAT|O_EXCL.*= \([0-9]*\)$/\1/p" trace)
	[ -n "$fd" ]
	run grep -c "write($fd, .*, 304) *= 304" trace
	[ "$output" = 1 ]
}

# crash_every DIFF [envapply options]: kill envapply at each of its calls
# that change files, on a fresh copy of std.orig; before recovery every
# variable file must be old or new, after it the whole directory.
crash_every() {
	local diff=$1
	shift
	rm -rf target .target.envsync-*
	cp -a std.orig target
	CRASH_COUNT=count LD_PRELOAD="$SHIM" envapply "$@" target "$diff"
	diff -r target act
	local total n_old=0 n_new=0 f
	total=$(cat count)
	[ "$total" -gt 10 ]
	for ((i = 1; i <= total; i++)); do
		rm -rf target .target.envsync-*
		cp -a std.orig target
		run env CRASH_AT=$i LD_PRELOAD="$SHIM" envapply "$@" target "$diff"
				[ "$status" -eq 137 ] || { echo "call $i: status $status, not killed"; return 1; }
		for f in target/*; do
			f=${f#target/}
			cmp -s "target/$f" "std.orig/$f" || cmp -s "target/$f" "act/$f" ||
				{ echo "call $i of $total: $f is neither old nor new"; return 1; }
		done
		envapply --recover target
		if diff -r target std.orig >/dev/null; then
			n_old=$((n_old + 1))
		elif diff -r target act >/dev/null; then
			n_new=$((n_new + 1))
		else
			echo "call $i of $total: the directory is neither old nor new"
			diff -r target act || true
			return 1
		fi
		envapply "$@" target "$diff"
		diff -r target act
		[ ! -e .target.envsync-journal ] && [ ! -e .target.envsync-journal.new ]
	done
	echo "killed at each of $total calls: $n_old old, $n_new new after recovery" >&3
	[ "$n_old" -gt 0 ] && [ "$n_new" -gt 0 ]
}

@test "a kill at every call of an apply: each variable old or new, the set old or new after --recover" {
	make_dirs
	envdiff std.env act.env | envjudge > d.envd
	crash_every d.envd
}

@test "a kill at every call of a rollback: the directory old or new after --recover" {
	make_dirs
	envdiff std.env act.env > d.envd || true
	rm -rf target .target.envsync-*
	cp -a std.orig target
	envapply target d.envd
	cp .target.envsync-last saved-last
	CRASH_COUNT=count LD_PRELOAD="$SHIM" envapply --rollback target
	diff -r target std.orig
	total=$(cat count)
	for ((i = 1; i <= total; i++)); do
		rm -rf target .target.envsync-*
		cp -a act target
		cp saved-last .target.envsync-last
		run env CRASH_AT=$i LD_PRELOAD="$SHIM" envapply --rollback target
		[ "$status" -eq 137 ]
		envapply --recover target
		diff -r target act >/dev/null || diff -r target std.orig >/dev/null ||
			{ echo "call $i of $total: neither"; return 1; }
	done
}

# Can this file system carry the immutable attribute (root on ext4: yes;
# tmpfs, overlayfs or no CAP_LINUX_IMMUTABLE: maybe not)?
immutable_works() {
	printf 'x' > probe
	chattr +i probe 2>/dev/null || { rm -f probe; return 1; }
	lsattr probe | grep -q '^....i' || return 1
	chattr -i probe && rm -f probe
}

is_immutable() { # FILE
	lsattr "$1" | grep -q '^....i'
}

@test "immutable variables (as efivarfs has them): cleared before writing, given back after" {
	immutable_works || skip "chattr +i does not work here"
	make_dirs
	envdiff std.env act.env > d.envd || true
	chattr +i std/*
	envapply std d.envd
	diff -r std act
	# the changed ones have it back, the unchanged ones kept it, a new one has none
	is_immutable std/Timeout-$G
	is_immutable std/ConOut-$G
	is_immutable std/BootOrder-$G
	is_immutable std/Boot0000-$G
	run ! is_immutable std/Boot0001-$G
	envapply --rollback std
	diff -r std std.orig
	chattr -i std/*
}

@test "an immutable attribute that cannot be cleared: the file and the reason, nothing changed" {
	immutable_works || skip "chattr +i does not work here"
	command -v setpriv >/dev/null || skip "no setpriv"
	setpriv --bounding-set -linux_immutable true 2>/dev/null || skip "cannot drop CAP_LINUX_IMMUTABLE"
	make_dirs
	envdiff std.env act.env > d.envd || true
	chattr +i std/Lang-$G
	run --separate-stderr setpriv --bounding-set -linux_immutable envapply std d.envd
	[ "$status" -eq 2 ]
	[ "$stderr" = "envapply: std/Lang-$G: cannot clear the immutable attribute (chattr -i): Operation not permitted" ]
	is_immutable std/Lang-$G
	diff -r std std.orig
	[ ! -e .std.envsync-journal ] && [ ! -e .std.envsync-last ]
	# with the capability, the same apply goes through
	envapply std d.envd
	diff -r std act
}
