#!/usr/bin/env bats
# envrev.bats: printing (plain), comparing (-c) and restamping (-s, --bump,
# -i, -o) revisions.
load common

# a.env at revision 41: items "bios" (3000 pattern bytes) and "config"
mkimage() {
	patfile bios 3000 3
	printf 'mode=standby\n' > config
	envdump -r 41 bios=bios config=config -o a.env
}

# Two images differ only in their revision fields and header CRC32s.
same_but_rev() { # A B
	cmp <(head -c 16 "$1") <(head -c 16 "$2")
	cmp <(head -c 28 "$1" | tail -c 4) <(head -c 28 "$2" | tail -c 4)
	cmp <(tail -c +33 "$1") <(tail -c +33 "$2")
}

@test "envrev --help and --version" {
	run envrev --version
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "envrev (envsync) "* ]]
	run envrev --help
	[ "$status" -eq 0 ]
	for opt in --compare --set --bump --in-place --output --force; do
		[[ "$output" == *"$opt"* ]]
	done
	[[ "$output" == *"3 equal revisions but different contents"* ]]
}

@test "envrev IMAGE prints the revision, and only that" {
	mkimage
	xrun envrev a.env
	[ "$status" -eq 0 ]
	[ "$output" = 41 ]
	[ -z "$stderr" ]
	envdump -r 18446744073709551615 config=config -o max.env
	[ "$(envrev max.env)" = 18446744073709551615 ]
	[ "$(envrev - < a.env)" = 41 ]
	# shellcheck disable=SC2002 # a pipe on stdin, not a seekable file, on purpose
	[ "$(cat a.env | envrev -)" = 41 ]
}

@test "envrev IMAGE of a raw file or a missing file is trouble" {
	mkimage
	xrun envrev config
	one_error "envrev: config: byte 0: bad magic (not an env image)"
	xrun envrev nope
	one_error "envrev: nope: cannot open: No such file or directory"
}

@test "envrev usage errors exit 2" {
	mkimage
	for args in "" "a.env a.env" "-c a.env" "-c a.env a.env a.env" "-c -s 1 a.env a.env" \
		"-s 1 --bump a.env" "-i a.env" "-i -s 1" "-i -s 1 -o b.env a.env" \
		"-s x a.env" "-s -1 a.env" "--bogus a.env" "-o b.env a.env" "-c -o b.env a.env a.env"; do
		# shellcheck disable=SC2086
		run envrev $args
		[ "$status" -eq 2 ] || { echo "envrev $args: status $status"; false; }
	done
	[ ! -e b.env ]
}

@test "envrev -s N writes the image restamped, to stdout or -o FILE" {
	mkimage
	envrev -s 7 a.env > b.env
	[ "$(envrev b.env)" = 7 ]
	same_but_rev a.env b.env
	run envdump -l b.env
	[ "${lines[0]}" = "revision 7" ]
	[ "${lines[1]}" = "$(crc32 -x < bios)         3000 bios" ]
	run envrev -s 0x2a -o c.env a.env
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	no_temps c.env
	[ "$(envrev c.env)" = 42 ]
	# restamping to its own revision gives back the same bytes
	envrev -s 41 a.env | cmp - a.env
}

@test "envrev -s without IMAGE filters stdin to stdout" {
	mkimage
	# shellcheck disable=SC2002 # a pipe on stdin, not a seekable file, on purpose
	cat a.env | envrev -s 99 > b.env
	[ "$(envrev b.env)" = 99 ]
	same_but_rev a.env b.env
	envrev -s 98 < a.env > c.env
	[ "$(envrev c.env)" = 98 ]
}

@test "envrev --bump adds one; not beyond 2^64-1" {
	mkimage
	envrev --bump a.env > b.env
	[ "$(envrev b.env)" = 42 ]
	same_but_rev a.env b.env
	envdump -r 18446744073709551615 config=config -o max.env
	xrun envrev --bump -o b2.env max.env
	one_error "envrev: max.env: revision 18446744073709551615 cannot be bumped"
	no_temps b2.env absent
	cp max.env before
	xrun envrev --bump -i max.env
	[ "$status" -eq 2 ]
	cmp max.env before
	no_temps max.env
}

@test "envrev -i restamps the image in place, atomically" {
	mkimage
	cp a.env orig.env
	run envrev -s 100 -i a.env
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(envrev a.env)" = 100 ]
	same_but_rev orig.env a.env
	envrev --bump -i a.env
	[ "$(envrev a.env)" = 101 ]
	no_temps a.env
}

@test "envrev -s/-i on an image with a corrupt item fails and changes nothing" {
	mkimage
	flip a.env $((32 + 160 + 1500))
	cp a.env before
	xrun envrev -s 50 -o b.env a.env
	one_error "envrev: a.env: item 'bios': CRC32 mismatch (directory says *, data has *)"
	no_temps b.env absent
	xrun envrev -s 50 -i a.env
	one_error "envrev: a.env: item 'bios': CRC32 mismatch*"
	cmp a.env before
	no_temps a.env
}

@test "envrev -c: equal revisions and contents exit 0, silently" {
	mkimage
	cp a.env b.env
	xrun envrev -c a.env b.env
	[ "$status" -eq 0 ]
	[ -z "$output$stderr" ]
	# the same content written again
	envdump -r 41 bios=bios config=config -o c.env
	run envrev -c a.env c.env
	[ "$status" -eq 0 ]
}

@test "envrev -c: different revisions exit 1, whatever the contents" {
	mkimage
	envrev -s 42 a.env > b.env
	xrun envrev -c a.env b.env
	[ "$status" -eq 1 ]
	[ -z "$output$stderr" ]
	printf 'other' > other
	envdump -r 40 other=other -o c.env
	run envrev -c a.env c.env
	[ "$status" -eq 1 ]
}

@test "envrev -c: equal revisions, different contents exit 3 naming the item" {
	mkimage
	cp bios bios2
	flip bios2 2999 01
	envdump -r 41 bios=bios2 config=config -o b.env
	xrun envrev -c a.env b.env
	one_error "envrev: a.env and b.env: both at revision 41 but contents differ (1 item: 'bios')" 3
	[ -z "$output" ]
}

@test "envrev -c: exit 3 names every differing item (added, removed, resized)" {
	mkimage
	printf 'x' > extra
	printf 'mode=active\n' > config2
	envdump -r 41 config=config2 extra=extra -o b.env
	xrun envrev -c a.env b.env
	one_error "envrev: a.env and b.env: both at revision 41 but contents differ (3 items: 'config', 'extra', 'bios')" 3
}

@test "envrev -c: more than five differing items are cut short" {
	for i in 1 2 3 4 5 6 7; do printf 'a' > "s$i"; printf 'b' > "t$i"; done
	envdump -r 1 i1=s1 i2=s2 i3=s3 i4=s4 i5=s5 i6=s6 i7=s7 -o a.env
	envdump -r 1 i1=t1 i2=t2 i3=t3 i4=t4 i5=t5 i6=t6 i7=t7 -o b.env
	xrun envrev -c a.env b.env
	one_error "envrev: a.env and b.env: both at revision 1 but contents differ (7 items: 'i1', 'i2', 'i3', 'i4', 'i5', ...)" 3
}

@test "envrev -c: equal revisions, equal sizes and CRC32s, other bytes exit 3" {
	mkimage
	cp bios bios2
	xorpoke bios2 10 "$CRC_COLLIDE"
	envdump -r 41 bios=bios2 config=config -o b.env
	[ "$(envdump -l a.env)" = "$(envdump -l b.env)" ]
	xrun envrev -c a.env b.env
	one_error "envrev: a.env and b.env: both at revision 41 but contents differ (1 item: 'bios')" 3
}

@test "envrev -c on raw files: 0 identical, 1 different" {
	patfile r1 5000 1
	cp r1 r2
	xrun envrev -c r1 r2
	[ "$status" -eq 0 ]
	[ -z "$output$stderr" ]
	flip r2 4999
	xrun envrev -c r1 r2
	[ "$status" -eq 1 ]
	[ -z "$output$stderr" ]
	head -c 4999 r1 > r3
	run envrev -c r1 r3
	[ "$status" -eq 1 ]
	: > e1
	: > e2
	run envrev -c e1 e2
	[ "$status" -eq 0 ]
}

@test "envrev -c of a raw file and an image: the raw file is the item 'raw'" {
	patfile r1 500 1
	envdump -r 3 raw=r1 -o raw.env
	run envrev -c r1 raw.env
	[ "$status" -eq 0 ]
	run envrev -c raw.env r1
	[ "$status" -eq 0 ]
	envdump -r 3 other=r1 -o other.env
	xrun envrev -c r1 other.env
	[ "$status" -eq 1 ]
	[ -z "$stderr" ]
	cp r1 r2
	flip r2 0
	run envrev -c raw.env r2
	[ "$status" -eq 1 ]
}

@test "envrev -c of a missing or broken operand is trouble" {
	mkimage
	xrun envrev -c a.env nope
	one_error "envrev: nope: cannot open: No such file or directory"
	xrun envrev -c nope a.env
	one_error "envrev: nope: cannot open: No such file or directory"
	mkdir dir
	xrun envrev -c a.env dir
	one_error "envrev: dir: is a directory"
}

@test "envrev refuses to write an image to a terminal unless -f" {
	command -v script > /dev/null || skip "no script(1) to give the tool a terminal"
	mkimage
	run script -qec "envrev -s 5 a.env" /dev/null
	[ "$status" -eq 2 ]
	[[ "$output" == *"envrev: refusing to write binary data to a terminal"* ]]
	run script -qec "envrev -f --bump a.env" /dev/null
	[ "$status" -eq 0 ]
	[[ "$output" == ENVIMAGE* ]]
	run script -qec "envrev a.env" /dev/null
	[ "$status" -eq 0 ]
	[[ "$output" == 41* ]]
}

@test "envrev to a full disk fails with exit 2 and a message" {
	[ -w /dev/full ] || skip "no /dev/full"
	mkimage
	xrun bash -c 'envrev -s 1 a.env > /dev/full'
	one_error "envrev: (stdout): write error: No space left on device"
	xrun bash -c 'envrev a.env > /dev/full'
	one_error "envrev: (stdout): write error: No space left on device"
}

@test "envrev -i and -o over an existing file keep its permissions" {
	mkimage
	chmod 600 a.env
	envrev --bump -i a.env
	[ "$(stat -c %a a.env)" = 600 ]
	printf 'old' > b.env
	chmod 640 b.env
	envrev -s 5 -o b.env a.env
	[ "$(stat -c %a b.env)" = 640 ]
	[ "$(envrev b.env)" = 5 ]
	# a new file gets the usual 0666 minus umask
	(umask 022 && envrev -s 6 -o c.env a.env)
	[ "$(stat -c %a c.env)" = 644 ]
}

@test "envrev -s -o killed mid-write leaves neither the file nor a temporary" {
	mkimage
	mkfifo in.fifo
	envrev -s 5 -o out.env < in.fifo &
	pid=$!
	exec {w}> in.fifo # (not fd 3: bats reports on it)
	# the header and directory, then the writer stalls inside the items
	head -c 400 a.env >&"$w"
	for ((i = 0; i < 100; i++)); do
		compgen -G 'out.env.tmp*' > /dev/null && break
		sleep 0.05
	done
	compgen -G 'out.env.tmp*' > /dev/null
	kill -TERM "$pid"
	status=0
	wait "$pid" || status=$?
	exec {w}>&-
	[ "$status" -eq $((128 + 15)) ]
	no_temps out.env absent
}

@test "envrev -c of an image on a pipe: revisions alone are fine, contents need a file" {
	mkimage
	envrev -s 42 a.env > b.env
	run bash -c 'cat a.env | envrev -c - b.env'
	[ "$status" -eq 1 ]
	cp a.env c.env
	xrun bash -c 'cat a.env | envrev -c - c.env'
	one_error "envrev: (stdin): comparing the contents needs a file, not a pipe"
	xrun bash -c 'cat a.env | envrev -c c.env -'
	one_error "envrev: (stdin): comparing the contents needs a file, not a pipe"
	run envrev -c - c.env < a.env
	[ "$status" -eq 0 ]
}

@test "envrev -s from a pipe refuses bytes after the last item, like a file" {
	mkimage
	cat a.env > junk.env
	printf 'junk' >> junk.env
	xrun envrev -s 5 -o out.env junk.env
	one_error "envrev: junk.env: byte $(stat -c %s a.env): 4 bytes after the last item's end"
	no_temps out.env absent
	xrun bash -c 'cat junk.env | envrev -s 5 -o out.env'
	one_error "envrev: (stdin): byte $(stat -c %s a.env): data after the last item's end"
	no_temps out.env absent
	# and a short pipe
	xrun bash -c 'head -c 1000 a.env | envrev -s 5 -o out.env'
	one_error "envrev: (stdin): item 'bios': truncated at byte 808 of 3000"
	no_temps out.env absent
	# shellcheck disable=SC2002 # a pipe on stdin, not a seekable file, on purpose
	cat a.env | envrev -s 5 -o out.env
	same_but_rev a.env out.env
}
