#!/usr/bin/env bats
# applybad.bats: bad input to envapply — truncated, corrupt or crafted
# streams, a stream for another target, a SOURCE that does not match, a
# read-only target, a full disk — gets a one-line error naming the file and
# leaves the target byte for byte as it was, with no journal or half-built
# file behind.
load common
bats_require_minimum_version 1.5.0

CRC32="$ES_BUILDDIR/t/crc32"

setup_file() {
	sh "$ES_SRCDIR/samples/make-samples" "$BATS_FILE_TMPDIR/samples" >/dev/null
}

setup() {
	cd "$BATS_TEST_TMPDIR" || exit 1
	cp "$BATS_FILE_TMPDIR"/samples/* .
	# the streams the cases start from
	envdiff standby.env active.env | envjudge -o img.envd
	envdiff standby.fd active.fd | envjudge -o raw.envd
	cp standby.env saved.env
	cp standby.fd saved.fd
}

teardown() {
	local f m
	for f in "$BATS_TEST_TMPDIR"/*; do
		chattr -i "$f" 2>/dev/null || true
	done
	for m in "$BATS_TEST_TMPDIR"/mnt "$BATS_TEST_TMPDIR"/ro; do
		if mountpoint -q "$m" 2>/dev/null; then umount "$m"; fi
	done
}

# Re-seal a patched stream: the CRC32 in its last 4 bytes covers all before.
reseal() { # FILE
	local n c
	n=$(stat -c %s "$1")
	c=$(head -c $((n - 4)) "$1" | "$CRC32")
	poke "$1" $((n - 4)) "${c:6:2}${c:4:2}${c:2:2}${c:0:2}"
}

# Put the 8-byte little-endian NUMBER at OFFSET of FILE.
poke64() { # FILE OFFSET NUMBER
	local i v=$3 hex=
	for ((i = 0; i < 8; i++)); do
		hex=$hex$(printf '%02x' $((v & 255)))
		v=$((v >> 8))
	done
	poke "$1" "$2" "$hex"
}

# TARGET is byte for byte SAVED, and no journal or new file is beside it
# (or in DIR).
unchanged() { # TARGET SAVED [DIR]
	local dir=${3:-$(dirname "$1")} name
	name=$(basename "$1")
	cmp "$1" "$2"
	if ls -A "$dir" | grep -E "^\.$name\.envsync-(journal|new)"; then
		echo "a journal or new file was left behind" >&2
		return 1
	fi
}

# After `run --separate-stderr`: exit STATUS and exactly one line on stderr
# matching the glob PATTERN.
one_error() { # STATUS PATTERN
	if [ "$status" -ne "$1" ]; then
		echo "exit $status, expected $1: $stderr" >&2
		return 1
	fi
	if [ "${#stderr_lines[@]}" -ne 1 ]; then
		echo "expected one line on stderr: $stderr" >&2
		return 1
	fi
	# shellcheck disable=SC2053
	if [[ "$stderr" != $2 ]]; then
		echo "stderr: $stderr" >&2
		echo "wanted: $2" >&2
		return 1
	fi
}

# Mount a tmpfs of SIZE on DIR, or skip the test saying why.
tmpfs_or_skip() { # DIR SIZE
	mkdir -p "$1"
	[ "$(id -u)" -eq 0 ] || skip "mounting a small tmpfs needs root"
	mount -t tmpfs -o size="$2" tmpfs "$1" 2>/dev/null ||
		skip "cannot mount a tmpfs here (no CAP_SYS_ADMIN?)"
}

@test "a truncated stream, cut anywhere: exit 2, target unchanged" {
	local n
	n=$(stat -c %s img.envd)
	# header, item record, mid-entry, entry boundary, mid end record, the
	# second item, the missing tail, the missing CRC
	for cut in 0 5 47 48 100 143 150 168 250 300 $((n - 24)) $((n - 10)) $((n - 4)) $((n - 1)); do
		head -c "$cut" img.envd > cut.envd
		run --separate-stderr envapply -s active.env standby.env cut.envd
		one_error 2 "envapply: cut.envd: byte $cut: truncated stream (*)" || { echo "cut at $cut"; return 1; }
		unchanged standby.env saved.env
	done
	# raw, and from a pipe
	for cut in 100 150 $(($(stat -c %s raw.envd) - 24)); do
		run --separate-stderr bash -c "head -c $cut raw.envd | envapply -s active.fd standby.fd"
		one_error 2 "envapply: (stdin): byte $cut: truncated stream (*)" || { echo "cut at $cut"; return 1; }
		unchanged standby.fd saved.fd
	done
}

@test "a stream with bytes after its end: exit 2, target unchanged" {
	cp raw.envd long.envd
	printf 'x' >> long.envd
	run --separate-stderr envapply standby.fd long.envd
	one_error 2 "envapply: long.envd: byte 312: data after the end of the stream"
	unchanged standby.fd saved.fd
}

@test "a corrupt stream (one flipped byte): CRC error, exit 2, target unchanged" {
	cp raw.envd flip.envd
	poke flip.envd 160 00
	run --separate-stderr envapply standby.fd flip.envd
	one_error 2 "envapply: flip.envd: byte 308: stream CRC32 mismatch (stored *, computed *)"
	unchanged standby.fd saved.fd
	cp raw.envd flip.envd
	poke flip.envd 20 ff
	run --separate-stderr envapply standby.fd flip.envd
	one_error 2 "envapply: flip.envd: byte 44: header CRC32 mismatch"
	unchanged standby.fd saved.fd
	# any byte of the stream, flipped, is caught (every 13th: all the fields)
	local n off st
	n=$(stat -c %s img.envd)
	for ((off = 0; off < n; off += 13)); do
		cp img.envd flip.envd
		xorpoke flip.envd "$off" 5a
		st=0
		envapply -s active.env standby.env flip.envd 2> err || st=$?
		[ "$st" -eq 2 ] || { echo "flipped byte $off: exit $st"; return 1; }
		[ "$(wc -l < err)" -eq 1 ] && grep -q '^envapply: flip\.envd: ' err ||
			{ echo "flipped byte $off: $(cat err)"; return 1; }
	done
	unchanged standby.env saved.env
}

@test "a damaged journal (any byte flipped): --rollback refuses, target unchanged" {
	# the journal's CRC32 is taken over its buffer in stretches (lib/journal.c
	# jcrc), not per field read: every byte must still count, the tail's too
	envdiff standby.fd active.fd | envjudge -r 1 -o d.envd || true
	envapply standby.fd d.envd
	cmp standby.fd active.fd
	local j=.standby.fd.envsync-last n off st
	cp "$j" last.saved
	n=$(stat -c %s "$j")
	[ "$n" -gt 100 ]
	for ((off = 0; off < n; off += 7)); do
		cp last.saved "$j"
		xorpoke "$j" "$off" 5a
		st=0
		envapply --rollback standby.fd 2> err || st=$?
		[ "$st" -eq 2 ] || { echo "flipped byte $off of $n: exit $st: $(cat err)"; return 1; }
		[ "$(wc -l < err)" -eq 1 ] || { echo "flipped byte $off: $(cat err)"; return 1; }
		cmp standby.fd active.fd
	done
	# a byte of the last record's data (the tail is the last 24 bytes): the
	# CRC32 says so
	cp last.saved "$j"
	xorpoke "$j" $((n - 30)) 01
	run --separate-stderr envapply --rollback standby.fd
	one_error 2 "envapply: *: journal CRC32 or record count mismatch"
	# the undamaged journal still rolls back
	cp last.saved "$j"
	envapply --rollback standby.fd
	cmp standby.fd saved.fd
}

@test "a stream for another target (another base): exit 4, target unchanged" {
	# images: the same revisions, other contents
	randfile other.bios 131072 99
	printf 'hostname=node-c\n' > other.cfg
	envdump -r 41 bios=other.bios config=other.cfg -o other41.env
	envdump -r 42 bios=other.bios -o other42.env
	envdiff other41.env other42.env | envjudge -o other.envd
	run --separate-stderr envapply -s other42.env standby.env other.envd
	one_error 4 "envapply: standby.env: is neither at the diff's base nor at its result (wrong target or stale diff other.envd)"
	unchanged standby.env saved.env
	# raw: the image's stream is not for a raw target, and the other way round
	run --separate-stderr envapply standby.fd img.envd
	[ "$status" -eq 2 ] || [ "$status" -eq 4 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ "$stderr" == "envapply: "* ]]
	unchanged standby.fd saved.fd
	run --separate-stderr envapply standby.env raw.envd
	[ "$status" -eq 2 ] || [ "$status" -eq 4 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	unchanged standby.env saved.env
	# raw: a file of the same size with other bytes
	randfile other.fd 1048576 98
	cp other.fd saved-other.fd
	run --separate-stderr envapply other.fd raw.envd
	one_error 4 "envapply: other.fd: is neither at the diff's base nor at its result*"
	unchanged other.fd saved-other.fd
}

# The raw stream (312 bytes): header 0-47, item 48-143, four Data entries of
# 7 bytes at 144, 168, 192, 216 (flag at +0, size at +4, offset at +8, data
# at +16) for offsets 512, 65536, 300000, 1048000; end record 240-287; tail.

@test "an entry past the item's end: exit 2, target unchanged" {
	cp raw.envd past.envd
	poke64 past.envd 224 1048572
	reseal past.envd
	run --separate-stderr envapply standby.fd past.envd
	one_error 2 "envapply: past.envd: entry 4 (byte 216): offset 1048572 + size 7 beyond the item"
	unchanged standby.fd saved.fd
	cp raw.envd past.envd
	poke64 past.envd 224 $((1 << 62))
	reseal past.envd
	run --separate-stderr envapply standby.fd past.envd
	one_error 2 "envapply: past.envd: entry 4 (byte 216): offset * beyond the item"
	unchanged standby.fd saved.fd
}

@test "overlapping entries: exit 2, target unchanged" {
	cp raw.envd over.envd
	poke64 over.envd 176 515
	reseal over.envd
	run --separate-stderr envapply standby.fd over.envd
	one_error 2 "envapply: over.envd: entry 2 (byte 168): offset 515 overlaps or precedes the previous run (ends at 519)"
	unchanged standby.fd saved.fd
	# entries out of order
	cp raw.envd order.envd
	poke64 order.envd 176 100
	reseal order.envd
	run --separate-stderr envapply standby.fd order.envd
	one_error 2 "envapply: order.envd: entry 2 (byte 168): offset 100 overlaps or precedes*"
	unchanged standby.fd saved.fd
}

@test "a Cont entry without its Area: exit 2, target unchanged" {
	cp raw.envd cont.envd
	poke cont.envd 144 03
	reseal cont.envd
	run --separate-stderr envapply standby.fd cont.envd
	one_error 2 "envapply: cont.envd: entry 1 (byte 144): Cont entry at relative offset 512 without its Area"
	unchanged standby.fd saved.fd
	# an Area whose Conts are missing: the bios item's Area (19 bytes) made 27
	cp img.envd area.envd
	poke area.envd 148 1b
	reseal area.envd
	run --separate-stderr envapply -s active.env standby.env area.envd
	one_error 2 "envapply: area.envd: *"
	unchanged standby.env saved.env
}

@test "end counts that disagree with the entries: exit 2, target unchanged" {
	cp raw.envd count.envd
	poke64 count.envd 272 29
	reseal count.envd
	run --separate-stderr envapply standby.fd count.envd
	one_error 2 "envapply: count.envd: item 'raw' end (byte 240): counts (4 entries, 4 spots, 29 bytes) disagree with the entries (4, 4, 28)"
	unchanged standby.fd saved.fd
}

@test "a wrong result CRC32 in the stream: refused before any write, exit 2" {
	cp raw.envd crc.envd
	poke crc.envd 248 deadbeef
	reseal crc.envd
	run --separate-stderr envapply standby.fd crc.envd
	one_error 2 "envapply: crc.envd: item 'raw': its entries turn base CRC32 * into *, not the result's efbeadde (a corrupt or forged diff)"
	unchanged standby.fd saved.fd
	# an image, in place
	randfile a 8192 8
	cp a b
	poke b 4000 0102030405
	envdump -r 1 a=a -o old.env
	envdump -r 2 a=b -o new.env
	cp old.env t.env
	envdiff old.env new.env | envjudge -o i.envd
	# the item end record: 48 + 96 + 24 (one Data entry) = 168; result CRC at +8
	[ "$(xxd -s 168 -l 1 -p i.envd)" = 45 ]
	poke i.envd 176 deadbeef
	reseal i.envd
	run --separate-stderr envapply t.env i.envd
	one_error 2 "envapply: i.envd: item 'a': its entries turn base CRC32 * (a corrupt or forged diff)"
	unchanged t.env old.env
}

@test "a result that fails its verification after the writes is undone, exit 2" {
	# A raw target that grows: its result CRC32 does not follow from the
	# base's and the entries, so the wrong one is only caught by reading the
	# target after the apply; the old content is put back.
	randfile a 8192 9
	cp a b
	poke b 100 0102
	printf 'grown' >> b
	envdiff a b | envjudge -o g.envd
	n=$(stat -c %s g.envd)
	# the end record is the 48 bytes before the 24-byte tail; result CRC at +8
	[ "$(xxd -s $((n - 72)) -l 1 -p g.envd)" = 45 ]
	poke g.envd $((n - 64)) deadbeef
	reseal g.envd
	cp a t
	run --separate-stderr envapply t g.envd
	one_error 2 "envapply: t: content is not the expected 8197 bytes with CRC32 efbeadde (the target is back at its previous state)"
	unchanged t a
}

@test "a hostile item size: exit 2, target unchanged, no journal left" {
	cp raw.envd huge.envd
	poke64 huge.envd 72 $((1 << 61))
	reseal huge.envd
	run --separate-stderr envapply standby.fd huge.envd
	one_error 2 "envapply: standby.fd: *"
	unchanged standby.fd saved.fd
	# and the target is still usable
	envapply standby.fd raw.envd
	cmp standby.fd active.fd
}

@test "a raw diff growing the target past its free space: refused before any write" {
	# Found by fuzz/apply: a small stream saying the result is 8 TiB (sparse,
	# zeros past the base) had the apply grow the file and then read it all
	# to verify it, for hours.
	randfile a 4096 11
	cp a b
	printf 'x' >> b
	envdiff a b | envjudge -o g.envd
	poke64 g.envd 72 $((1 << 43))
	reseal g.envd
	cp a t
	run --separate-stderr envapply t g.envd
	one_error 2 "envapply: t: the result needs 8796093018112 bytes but its file system has * free"
	unchanged t a
}

@test "a SOURCE that does not match the diff's result: exit 2, target unchanged" {
	envdiff standby.fd active.fd | envjudge -t 0 -o full.envd
	cp active.fd almost.fd
	poke almost.fd 1048575 00
	run --separate-stderr envapply -s almost.fd standby.fd full.envd
	one_error 2 "envapply: almost.fd: item 'raw' does not match the diff's result (1048576 bytes, CRC32 *)"
	unchanged standby.fd saved.fd
	head -c 1000 active.fd > short.fd
	run --separate-stderr envapply -s short.fd standby.fd full.envd
	one_error 2 "envapply: short.fd: item 'raw' does not match the diff's result*"
	unchanged standby.fd saved.fd
	envdiff standby.env active.env | envjudge -t 0 -o fimg.envd
	run --separate-stderr envapply -s standby.env standby.env fimg.envd
	one_error 2 "envapply: standby.env: item 'bios' does not match the diff's result*"
	unchanged standby.env saved.env
}

@test "a read-only target (immutable file): exit 2, unchanged" {
	chattr +i standby.fd 2>/dev/null || skip "chattr +i is not supported here"
	chattr +i standby.env
	# in place, through the journal
	run --separate-stderr envapply standby.fd raw.envd
	one_error 2 "envapply: standby.fd: *"
	unchanged standby.fd saved.fd
	# full: a new file renamed over it
	envdiff standby.fd active.fd | envjudge -t 0 -o full.envd
	run --separate-stderr envapply -s active.fd standby.fd full.envd
	one_error 2 "envapply: standby.fd: *"
	unchanged standby.fd saved.fd
	# an image whose layout changes
	run --separate-stderr envapply -s active.env standby.env img.envd
	one_error 2 "envapply: standby.env: *"
	unchanged standby.env saved.env
}

@test "a read-only target (read-only mount): exit 2, unchanged" {
	tmpfs_or_skip ro 4m
	cp standby.fd standby.env ro/
	mount -o remount,ro ro
	# the lock beside it cannot be made
	run --separate-stderr envapply ro/standby.fd raw.envd
	one_error 2 "envapply: ro/.standby.fd.envsync-lock: *Read-only file system"
	unchanged ro/standby.fd saved.fd
	# state elsewhere: the target itself is refused
	mkdir state
	run --separate-stderr envapply -J state ro/standby.fd raw.envd
	one_error 2 "envapply: ro/standby.fd: *Read-only file system"
	unchanged ro/standby.fd saved.fd state
	envdiff standby.fd active.fd | envjudge -t 0 -o full.envd
	run --separate-stderr envapply -J state -s active.fd ro/standby.fd full.envd
	one_error 2 "envapply: ro/*: *Read-only file system"
	unchanged ro/standby.fd saved.fd state
	run --separate-stderr envapply -J state -s active.env ro/standby.env img.envd
	one_error 2 "envapply: ro/*: *Read-only file system"
	unchanged ro/standby.env saved.env state
}

@test "a full disk: exit 2, unchanged" {
	tmpfs_or_skip mnt 256k
	randfile b.raw 200000 11
	randfile a.raw 200000 12
	cp b.raw mnt/t.raw
	# full: no room for the new file
	envdiff b.raw a.raw | envjudge -t 0 -o full.envd
	run --separate-stderr envapply -s a.raw mnt/t.raw full.envd
	one_error 2 "envapply: mnt/t.raw: the result needs 200000 bytes but its file system has * free"
	unchanged mnt/t.raw b.raw
	# delta: no room for the journal
	envdiff b.raw a.raw | envjudge -r 1 -o delta.envd
	run --separate-stderr envapply mnt/t.raw delta.envd
	one_error 2 "envapply: mnt/.t.raw.envsync-journal.new: *No space left on device"
	unchanged mnt/t.raw b.raw
	# an image whose layout changes: no room for the new image
	rm mnt/t.raw
	randfile big 150000 13
	printf 'a=1\n' > c1
	printf 'a=22\n' > c2
	envdump -r 1 big=big c=c1 -o old.env
	envdump -r 2 big=big c=c2 -o new.env
	cp old.env mnt/t.env
	envdiff old.env new.env | envjudge -r 1 -o img2.envd
	run --separate-stderr envapply mnt/t.env img2.envd
	one_error 2 "envapply: mnt/t.env: the result needs * bytes but its file system has * free"
	unchanged mnt/t.env old.env
	# and with room again, the same apply goes through
	umount mnt
	mkdir roomy && cp old.env roomy/t.env
	envapply roomy/t.env img2.envd
	cmp roomy/t.env new.env
}

@test "a full disk while a raw target grows in place: exit 2, unchanged" {
	tmpfs_or_skip mnt 256k
	randfile b.raw 100000 11
	randfile more 60000 14
	cat b.raw more > a.raw
	cp b.raw mnt/t.raw
	envdiff b.raw a.raw | envjudge -r 1 -o grow.envd
	run --separate-stderr envapply mnt/t.raw grow.envd
	one_error 2 "envapply: mnt/*: *No space left on device (the target is back at its previous state)"
	unchanged mnt/t.raw b.raw
}

@test "no room in TMPDIR for the stream's temporary copy: exit 2, unchanged" {
	tmpfs_or_skip mnt 64k
	randfile b.raw 300000 11
	randfile a.raw 300000 12
	cp b.raw t.raw
	# the stream is kept whole in TMPDIR and validated before any write
	envdiff b.raw a.raw | envjudge -r 1 -o delta.envd
	TMPDIR=$PWD/mnt run --separate-stderr envapply t.raw delta.envd
	one_error 2 "envapply: $PWD/mnt (the diff's temporary copy): write error: No space left on device"
	unchanged t.raw b.raw
	[ -z "$(ls -A mnt)" ]
	# a TMPDIR that does not exist (not under make check-valgrind: valgrind
	# keeps its own files in TMPDIR and cannot start)
	if [ "${ES_TEST_SLOWDOWN:-1}" = 1 ]; then
		TMPDIR=$PWD/none run --separate-stderr envapply t.raw delta.envd
		one_error 2 "envapply: $PWD/none: cannot create a temporary file for the diff: No such file or directory"
		unchanged t.raw b.raw
	fi
	# and with room, it applies
	TMPDIR=$PWD envapply t.raw delta.envd
	cmp t.raw a.raw
}
