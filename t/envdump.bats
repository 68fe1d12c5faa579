#!/usr/bin/env bats
# envdump.bats: building env images (-r, --rev-from, -o, -f), listing them
# (-l) and taking items out (-x).
load common

# two sources: "settings" (1000 pattern bytes) and "config" (text)
mksources() {
	patfile settings.bin 1000 7
	printf 'hostname=node-a\nntp=10.0.0.1\n' > config.txt
}

# The listing envdump -l must print for the sources of mksources at REV.
listing() { # REV
	printf 'revision %s\n' "$1"
	printf '%s %12d %s\n' "$(crc32 -x < settings.bin)" 1000 settings
	printf '%s %12d %s\n' "$(crc32 -x < config.txt)" 29 config
}

@test "envdump --help and --version" {
	run envdump --version
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "envdump (envsync) "* ]]
	run envdump --help
	[ "$status" -eq 0 ]
	for opt in --revision --rev-from --output --list --extract --force; do
		[[ "$output" == *"$opt"* ]]
	done
	[[ "$output" == *"Exit status: 0 success, 2 trouble"* ]]
}

@test "envdump -r REV -o FILE builds an image that -l lists exactly" {
	mksources
	run envdump -r 41 settings=settings.bin config=config.txt -o a.env
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	no_temps a.env
	# 32-byte header, two 80-byte directory entries, then the bytes in order
	[ "$(stat -c %s a.env)" -eq $((32 + 2 * 80 + 1000 + 29)) ]
	[ "$(head -c 8 a.env)" = ENVIMAGE ]
	[ "$(getle a.env 16 8)" -eq 41 ]
	cmp <(cat settings.bin config.txt) <(tail -c +193 a.env)
	run envdump -l a.env
	[ "$status" -eq 0 ]
	[ "$output" = "$(listing 41)" ]
}

@test "envdump writes the same image to stdout as to -o FILE" {
	mksources
	envdump -r 41 settings=settings.bin config=config.txt -o a.env
	envdump -r 41 settings=settings.bin config=config.txt > b.env
	cmp a.env b.env
}

@test "envdump without -r stamps revision 0; -r takes decimal, hex and 2^64-1" {
	mksources
	envdump config=config.txt > a.env
	[ "$(envrev a.env)" = 0 ]
	envdump -r 0x10 config=config.txt > a.env
	[ "$(envrev a.env)" = 16 ]
	# a leading zero is not octal
	envdump -r 010 config=config.txt > a.env
	[ "$(envrev a.env)" = 10 ]
	envdump -r 18446744073709551615 config=config.txt > a.env
	[ "$(envrev a.env)" = 18446744073709551615 ]
}

@test "envdump refuses a revision that is not one" {
	mksources
	for bad in -1 abc 18446744073709551616 '' 12x +3 0x 0x-1 08z; do
		xrun envdump -r "$bad" config=config.txt -o a.env
		[ "$status" -eq 2 ]
		[[ "$stderr" == *"not a revision"* ]]
		[ ! -e a.env ]
	done
}

@test "envdump usage errors exit 2" {
	mksources
	envdump -r 1 config=config.txt -o a.env
	run envdump
	[ "$status" -eq 2 ]
	run envdump -r 1 --rev-from a.env config=config.txt
	[ "$status" -eq 2 ]
	[[ "$output" == *"exclude each other"* ]]
	run envdump -l -x config a.env
	[ "$status" -eq 2 ]
	run envdump -x config a.env a.env
	[ "$status" -eq 2 ]
	run envdump -x config
	[ "$status" -eq 2 ]
	run envdump --no-such-option
	[ "$status" -eq 2 ]
	# options that would be ignored are refused
	run envdump -l -o list.txt a.env
	[ "$status" -eq 2 ]
	[[ "$output" == *"-l prints to stdout: no -o"* ]]
	[ ! -e list.txt ]
	run envdump -l -r 5 a.env
	[ "$status" -eq 2 ]
	run envdump -x config --rev-from a.env a.env
	[ "$status" -eq 2 ]
	[[ "$output" == *"not with -l or -x"* ]]
}

@test "envdump -l lists several images, each under its name" {
	mksources
	envdump -r 1 settings=settings.bin config=config.txt -o a.env
	envdump -r 2 settings=settings.bin config=config.txt -o b.env
	run envdump -l a.env b.env
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'a.env:\n%s\n\nb.env:\n%s' "$(listing 1)" "$(listing 2)")" ]
}

@test "envdump -l reads stdin, from a file or a pipe" {
	mksources
	envdump -r 9 settings=settings.bin config=config.txt -o a.env
	run envdump -l < a.env
	[ "$output" = "$(listing 9)" ]
	run bash -c 'cat a.env | envdump -l'
	[ "$status" -eq 0 ]
	[ "$output" = "$(listing 9)" ]
	run bash -c 'cat a.env | envdump -l -'
	[ "$output" = "$(listing 9)" ]
}

@test "envdump -l of a raw file fails: it is not an image" {
	mksources
	xrun envdump -l config.txt
	one_error "envdump: config.txt: byte 0: bad magic (not an env image)"
	[ -z "$output" ]
}

@test "envdump -x gives back each item's exact bytes" {
	mksources
	: > empty
	printf 'x' > one
	envdump -r 1 settings=settings.bin config=config.txt empty=empty one=one -o a.env
	for it in settings:settings.bin config:config.txt empty:empty one:one; do
		envdump -x "${it%%:*}" a.env > out
		cmp out "${it#*:}"
	done
}

@test "envdump -x -o FILE writes the item atomically" {
	mksources
	envdump -r 1 settings=settings.bin config=config.txt -o a.env
	run envdump -x settings -o out a.env
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	cmp out settings.bin
	no_temps out
}

@test "envdump -x reads the image from a pipe, skipping earlier items" {
	mksources
	envdump -r 1 settings=settings.bin config=config.txt -o a.env
	# shellcheck disable=SC2002 # a pipe on stdin, not a seekable file, on purpose
	cat a.env | envdump -x config - > out
	cmp out config.txt
	# shellcheck disable=SC2002 # a pipe on stdin, not a seekable file, on purpose
	cat a.env | envdump -x settings - > out
	cmp out settings.bin
}

@test "envdump -x of a missing item fails and writes nothing" {
	mksources
	envdump -r 1 settings=settings.bin config=config.txt -o a.env
	xrun envdump -x nope -o out a.env
	one_error "envdump: a.env: no item named 'nope'"
	no_temps out absent
}

@test "envdump keeps empty and 1-byte items, and an item per byte value" {
	: > empty
	printf '\0' > nul
	printf '\377' > ff
	envdump -r 1 empty=empty nul=nul ff=ff -o a.env
	run envdump -l a.env
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "00000000            0 empty" ]
	[ "${lines[2]}" = "$(crc32 -x < nul)            1 nul" ]
	[ "${lines[3]}" = "$(crc32 -x < ff)            1 ff" ]
	envdump -x nul a.env | cmp - nul
	envdump -x ff a.env | cmp - ff
	[ -z "$(envdump -x empty a.env)" ]
}

@test "envdump item names: 64 bytes and punctuation pass, 65 bytes fail" {
	printf 'v' > src
	n64=$(printf 'n%.0s' {1..64})
	envdump -r 1 "$n64=src" 'Boot0001-8be4df61-93ca-11d2-aa0d-00e098032b8c=src' \
		'a.b_c:d/e@f!~=src' -o a.env
	run envdump -l a.env
	[ "${lines[1]}" = "$(crc32 -x < src)            1 $n64" ]
	xrun envdump -r 1 "${n64}x=src" -o b.env
	one_error "envdump: '${n64}x=src': item name longer than 64 bytes"
	no_temps b.env absent
}

@test "envdump refuses item names with a space, a control byte, DEL or non-ASCII" {
	printf 'v' > src
	xrun envdump 'a b=src'
	one_error "envdump: 'a b=src': item name has a forbidden byte 0x20 at position 1"
	xrun envdump $'tab\there=src'
	one_error "envdump: *: item name has a forbidden byte 0x09 at position 3"
	xrun envdump $'del\x7f=src'
	one_error "envdump: *: item name has a forbidden byte 0x7f at position 3"
	xrun envdump $'\xc3\xa9t\xc3\xa9=src'
	one_error "envdump: *: item name has a forbidden byte 0xc3 at position 0"
}

@test "envdump refuses a malformed NAME=PATH and duplicate names" {
	printf 'v' > src
	xrun envdump -o a.env nameonly
	one_error "envdump: 'nameonly': expected NAME=PATH"
	xrun envdump -o a.env name=
	one_error "envdump: 'name=': expected NAME=PATH"
	xrun envdump -o a.env =src
	one_error "envdump: '=src': empty item name"
	xrun envdump -o a.env x=src y=src x=src
	one_error "envdump: 'x=src': duplicate item name 'x'"
	no_temps a.env absent
}

@test "envdump refuses a missing source, a directory, a character device" {
	printf 'v' > src
	mkdir dir
	xrun envdump -r 1 a=src b=missing -o a.env
	one_error "envdump: missing: cannot open: No such file or directory"
	no_temps a.env absent
	xrun envdump -r 1 a=dir -o a.env
	one_error "envdump: dir: is a directory"
	no_temps a.env absent
	xrun envdump -r 1 a=/dev/zero -o a.env
	one_error "envdump: /dev/zero: a raw input must be a regular file or block device"
	no_temps a.env absent
}

@test "envdump leaves an existing output untouched when it fails" {
	printf 'v' > src
	envdump -r 1 a=src -o a.env
	cp a.env before
	xrun envdump -r 2 a=src b=missing -o a.env
	[ "$status" -eq 2 ]
	cmp a.env before
	no_temps a.env
}

@test "envdump -o into a missing directory fails, naming it" {
	printf 'v' > src
	xrun envdump -r 1 a=src -o nodir/a.env
	one_error "envdump: nodir/a.env.tmp*: cannot create temporary file: No such file or directory"
}

@test "envdump --rev-from: same content keeps PREV's revision" {
	mksources
	envdump -r 41 settings=settings.bin config=config.txt -o prev.env
	envdump --rev-from prev.env settings=settings.bin config=config.txt -o new.env
	[ "$(envrev new.env)" = 41 ]
	cmp prev.env new.env
	# PREV may be the output itself (the cron job's usual call)
	envdump --rev-from prev.env settings=settings.bin config=config.txt -o prev.env
	[ "$(envrev prev.env)" = 41 ]
}

@test "envdump --rev-from: one changed byte bumps, wherever it is" {
	mksources
	envdump -r 41 settings=settings.bin config=config.txt -o prev.env
	for off in 0 500 999; do
		cp settings.bin s2
		flip s2 "$off" 01
		envdump --rev-from prev.env settings=s2 config=config.txt -o new.env
		[ "$(envrev new.env)" = 42 ]
	done
}

@test "envdump --rev-from: an added, removed, renamed, reordered or resized item bumps" {
	mksources
	printf 'new' > extra
	envdump -r 41 settings=settings.bin config=config.txt -o prev.env
	envdump --rev-from prev.env settings=settings.bin config=config.txt extra=extra > new.env
	[ "$(envrev new.env)" = 42 ]
	envdump --rev-from prev.env settings=settings.bin > new.env
	[ "$(envrev new.env)" = 42 ]
	envdump --rev-from prev.env settings=settings.bin cfg=config.txt > new.env
	[ "$(envrev new.env)" = 42 ]
	envdump --rev-from prev.env config=config.txt settings=settings.bin > new.env
	[ "$(envrev new.env)" = 42 ]
	head -c 999 settings.bin > s2
	envdump --rev-from prev.env settings=s2 config=config.txt > new.env
	[ "$(envrev new.env)" = 42 ]
}

@test "envdump --rev-from compares bytes, not only sizes and CRC32s" {
	mksources
	envdump -r 41 settings=settings.bin config=config.txt -o prev.env
	cp settings.bin s2
	xorpoke s2 100 "$CRC_COLLIDE"
	# same size, same CRC32, other bytes
	[ "$(crc32 < s2)" = "$(crc32 < settings.bin)" ]
	run ! cmp -s s2 settings.bin
	envdump --rev-from prev.env settings=s2 config=config.txt -o new.env
	[ "$(envrev new.env)" = 42 ]
}

@test "envdump --rev-from: a PREV at 2^64-1 cannot be bumped" {
	mksources
	envdump -r 18446744073709551615 config=config.txt -o prev.env
	envdump --rev-from prev.env config=config.txt -o same.env
	[ "$(envrev same.env)" = 18446744073709551615 ]
	xrun envdump --rev-from prev.env config=settings.bin -o new.env
	one_error "envdump: prev.env: revision 18446744073709551615 cannot be bumped"
	no_temps new.env absent
}

@test "envdump --rev-from: a missing, raw or corrupt PREV is trouble" {
	mksources
	xrun envdump --rev-from nope.env config=config.txt -o new.env
	one_error "envdump: nope.env: cannot open: No such file or directory"
	no_temps new.env absent
	xrun envdump --rev-from config.txt config=config.txt -o new.env
	one_error "envdump: config.txt: byte 0: bad magic (not an env image)"
	no_temps new.env absent
	envdump -r 5 config=config.txt -o prev.env
	poke prev.env 16 06
	xrun envdump --rev-from prev.env config=config.txt -o new.env
	one_error "envdump: prev.env: byte 28: header CRC32 mismatch*"
	no_temps new.env absent
}

@test "envdump refuses to write an image to a terminal unless -f" {
	command -v script > /dev/null || skip "no script(1) to give the tool a terminal"
	mksources
	run script -qec "envdump -r 1 config=config.txt" /dev/null
	[ "$status" -eq 2 ]
	[[ "$output" == *"envdump: refusing to write binary data to a terminal"* ]]
	[[ "$output" != *ENVIMAGE* ]]
	run script -qec "envdump -f -r 1 config=config.txt" /dev/null
	[ "$status" -eq 0 ]
	[[ "$output" == ENVIMAGE* ]]
	# an item's bytes may be binary too
	envdump -r 1 config=config.txt -o a.env
	run script -qec "envdump -x config a.env" /dev/null
	[ "$status" -eq 2 ]
	[[ "$output" == *"envdump: refusing to write binary data to a terminal"* ]]
	[[ "$output" != *hostname* ]]
	run script -qec "envdump -f -x config a.env" /dev/null
	[ "$status" -eq 0 ]
	[[ "$output" == hostname=node-a* ]]
	# a listing is text
	run script -qec "envdump -l a.env" /dev/null
	[ "$status" -eq 0 ]
	[[ "$output" == "revision 1"* ]]
}

@test "envdump to a full disk fails with exit 2 and a message" {
	[ -w /dev/full ] || skip "no /dev/full"
	mksources
	envdump -r 1 settings=settings.bin config=config.txt -o a.env
	xrun bash -c 'envdump -r 1 config=config.txt > /dev/full'
	one_error "envdump: (stdout): write error: No space left on device"
	xrun bash -c 'envdump -l a.env > /dev/full'
	one_error "envdump: (stdout): write error: No space left on device"
	xrun bash -c 'envdump -x settings a.env > /dev/full'
	one_error "envdump: (stdout): write error: No space left on device"
}

@test "envdump -o onto a device writes into it and leaves the device in place" {
	mksources
	mknod null c 1 3 2> /dev/null && mknod full c 1 7 2> /dev/null ||
		skip "cannot make device nodes here (needs root)"
	xrun envdump -r 1 config=config.txt -o null
	[ "$status" -eq 0 ]
	[ -c null ]
	xrun envdump -r 1 config=config.txt -o full
	one_error "envdump: full: write error: No space left on device"
	[ -c full ]
	no_temps null
	no_temps full
}

@test "envdump -o DIR is refused before anything is written" {
	mksources
	mkdir out
	xrun envdump -r 1 config=config.txt -o out
	one_error "envdump: out: is a directory"
	[ -z "$(ls out)" ]
	no_temps out
}
