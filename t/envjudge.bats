#!/usr/bin/env bats
# envjudge.bats: envjudge records a delta/full decision per item, by a fixed
# threshold (-t), a fraction of the item's size (-r), or a calibration of the
# target medium (-c), and passes every other byte of the stream on.
load common
bats_require_minimum_version 1.5.0

setup_file() {
	sh "$ES_SRCDIR/samples/make-samples" "$BATS_FILE_TMPDIR/samples" >/dev/null
}

setup() {
	cd "$BATS_TEST_TMPDIR" || exit 1
	cp "$BATS_FILE_TMPDIR"/samples/* .
}

# The decision words of the "end" lines of `envdiff -t` of the stream DIFF.
decisions() { # DIFF
	envdiff -t "$1" | sed -n 's/^end .*, //p' | tr '\n' ' '
}

# Compare $1 (text) with t/expected/NAME.
expect_text() { # NAME TEXT
	diff -u "$ES_SRCDIR/t/expected/$1" <(printf '%s\n' "$2")
}

# A 4096-byte raw pair whose diff is one 19-byte run and one lone byte:
# 2 spots, 20 bytes, 4 entries (Area + 2 Cont + Data), 96 stream bytes.
make_measured() {
	head -c 4096 /dev/zero > m.old
	cp m.old m.new
	poke m.new 100 0102030405060708090a0b0c0d0e0f10111213
	poke m.new 2000 ff
	run envdiff -o m.envd m.old m.new
	[ "$status" -eq 1 ]
}

# A raw item of 1000 bytes whose first N bytes differ.
make_halves() { # N
	head -c 1000 /dev/zero > h.old
	{ head -c "$1" /dev/zero | tr '\0' '\377'; head -c $((1000 - $1)) /dev/zero; } > h.new
	envdiff -o h.envd h.old h.new || [ $? -eq 1 ]
}

@test "the judged stream says 'judged' in its header and a decision for every item" {
	envdiff standby.env active.env > d.envd || [ $? -eq 1 ]
	run envdiff -t d.envd
	[[ "${lines[0]}" != *judged* ]]
	[ "$(decisions d.envd)" = "unjudged unjudged unjudged " ]
	envjudge d.envd > j.envd
	run envdiff -t j.envd
	[ "${lines[0]}" = "diff: base revision 41 -> result revision 42, 3 items, judged" ]
	[ "$(decisions j.envd)" = "delta delta delta " ]
	envjudge -t 0 d.envd > f.envd
	[ "$(decisions f.envd)" = "full full full " ]
	# only the header flag and the decisions change: every entry passes as it was
	diff <(envdiff -t d.envd | sed -e 's/, unjudged$//' -e 's/, judged$//') \
		<(envdiff -t f.envd | sed -e 's/, full$//' -e 's/, judged$//')
	# the header flag is bit 2 of the flags at byte 10 (bits 0, 1: images)
	[ "$(xxd -s 10 -l 1 -p d.envd)" = 03 ]
	[ "$(xxd -s 10 -l 1 -p f.envd)" = 07 ]
	envdiff standby.fd active.fd | envjudge > r.envd
	[ "$(xxd -s 10 -l 1 -p r.envd)" = 04 ]
	# same size: judging never adds or drops a record
	[ "$(stat -c %s d.envd)" -eq "$(stat -c %s f.envd)" ]
}

@test "the pipeline form: stdin to stdout, and - for stdin" {
	envdiff standby.fd active.fd | envjudge > a.envd
	envdiff standby.fd active.fd | envjudge - > b.envd
	cmp a.envd b.envd
	[ "$(decisions a.envd)" = "delta " ]
}

@test "a judged stream judged again gets the new decisions" {
	envdiff standby.env active.env | envjudge -t 0 | envjudge -r 1 > j.envd
	[ "$(decisions j.envd)" = "delta delta delta " ]
	envdiff standby.env active.env | envjudge | envjudge -t 0 > k.envd
	[ "$(decisions k.envd)" = "full full full " ]
}

@test "-r default 0.5: exactly half the item's bytes differing goes delta, one more goes full" {
	make_halves 500
	run envjudge -q h.envd
	[ "$status" -eq 0 ]
	envjudge h.envd > j.envd
	[ "$(decisions j.envd)" = "delta " ]
	run --separate-stderr envjudge -v -o /dev/null h.envd
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"bytes 500 vs threshold 500 -> delta" ]]

	make_halves 501
	run envjudge -q h.envd
	[ "$status" -eq 1 ]
	envjudge h.envd > j.envd
	[ "$(decisions j.envd)" = "full " ]
	# -r 0.5 given explicitly is the default
	envjudge -r 0.5 h.envd > k.envd
	cmp j.envd k.envd
}

@test "-r RATIO: the threshold is RATIO x the item's size" {
	make_halves 250
	run envjudge -q -r 0.25 h.envd
	[ "$status" -eq 0 ]
	make_halves 251
	run envjudge -q -r 0.25 h.envd
	[ "$status" -eq 1 ]
	run envjudge -q -r 0.251 h.envd
	[ "$status" -eq 0 ]
	run envjudge -q -r 0 h.envd
	[ "$status" -eq 1 ]
	make_halves 1000
	run envjudge -q -r 1 h.envd
	[ "$status" -eq 0 ]
	run envjudge -q -r 0.999 h.envd
	[ "$status" -eq 1 ]
}

@test "-t AMOUNT: delta when the amount is at most AMOUNT" {
	# the raw samples differ in 4 spots of 7 bytes
	envdiff standby.fd active.fd > d.envd || [ $? -eq 1 ]
	run envjudge -q -t 28 d.envd
	[ "$status" -eq 0 ]
	run envjudge -q -t 27 d.envd
	[ "$status" -eq 1 ]
	run envjudge -q -t 0 d.envd
	[ "$status" -eq 1 ]
	run envjudge -q -t 18446744073709551615 d.envd
	[ "$status" -eq 0 ]
	envjudge -t 27 d.envd > j.envd
	[ "$(decisions j.envd)" = "full " ]
}

@test "-m bytes|spots|entries|stream: which amount -t compares" {
	make_measured
	# amount: bytes 20, spots 2, entries 4, stream 4 x 24 = 96
	for m in "bytes 20" "spots 2" "entries 4" "stream 96"; do
		# shellcheck disable=SC2086 # split "AMOUNT VALUE" into $1 and $2
		set -- $m
		run envjudge -q -m "$1" -t "$2" m.envd
		[ "$status" -eq 0 ] || { echo "-m $1 -t $2: $status"; return 1; }
		run envjudge -q -m "$1" -t $(($2 - 1)) m.envd
		[ "$status" -eq 1 ] || { echo "-m $1 -t $(($2 - 1)): $status"; return 1; }
	done
	# bytes is the default
	run envjudge -q -t 19 m.envd
	[ "$status" -eq 1 ]
	# the measure applies to -r as well: 2 spots <= 0.001 x 4096, 20 bytes are not
	run envjudge -q -m spots -r 0.001 m.envd
	[ "$status" -eq 0 ]
	run envjudge -q -m bytes -r 0.001 m.envd
	[ "$status" -eq 1 ]
}

@test "-v explains every item's numbers and decision on stderr (expected text)" {
	envdiff standby.env active.env > d.envd || [ $? -eq 1 ]
	run --separate-stderr envjudge -v -r 0.3 -o j.envd d.envd
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	expect_text judge-verbose-ratio "$stderr"
	make_measured
	run --separate-stderr envjudge -v -m spots -t 1 m.envd
	[ "$status" -eq 0 ]
	expect_text judge-verbose-spots "$stderr"
	# the stream still goes to stdout, the same as without -v
	[ "$output" = "$(envjudge -m spots -t 1 m.envd)" ]
	# without -v: nothing on stderr
	run --separate-stderr envjudge -r 0.3 -o k.envd d.envd
	[ -z "$stderr" ]
	cmp j.envd k.envd
}

@test "-q: no output; exit 0 when every item goes delta, 1 when some item goes full" {
	envdiff standby.env active.env > d.envd || [ $? -eq 1 ]
	run envjudge -q d.envd
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run envjudge -q -t 1 d.envd
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	run envjudge -q -t 0 d.envd
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	# without -q a full decision is no failure
	run envjudge -t 0 -o j.envd d.envd
	[ "$status" -eq 0 ]
	# an image with nothing changed: no spots is always delta
	envdiff standby.env standby.env > s.envd
	run envjudge -q -t 0 s.envd
	[ "$status" -eq 0 ]
}

@test "-o FILE: the same bytes as stdout, written atomically" {
	envdiff standby.env active.env > d.envd || [ $? -eq 1 ]
	envjudge d.envd > stdout.envd
	envjudge -o out.envd d.envd
	cmp stdout.envd out.envd
	[ -z "$(ls -A | grep 'out\.envd\.')" ]
	# bad input: an existing FILE is left as it was and no temporary remains
	echo precious > keep.envd
	head -c 200 d.envd > cut.envd
	run envjudge -o keep.envd cut.envd
	[ "$status" -eq 2 ]
	[[ "$output" == "envjudge: cut.envd: byte 200: truncated stream"* ]]
	[ "$(cat keep.envd)" = precious ]
	[ -z "$(ls -A | grep 'keep\.envd\.')" ]
	run envjudge -o new.envd cut.envd
	[ "$status" -eq 2 ]
	[ ! -e new.envd ]
	[ -z "$(ls -A | grep 'new\.envd')" ]
}

@test "bad streams in: exit 2, one line naming the input" {
	envdiff standby.fd active.fd > d.envd || [ $? -eq 1 ]
	cp d.envd flip.envd
	poke flip.envd 160 ff
	run --separate-stderr envjudge -o out.envd flip.envd
	[ "$status" -eq 2 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ "$stderr" == "envjudge: flip.envd: byte "*": stream CRC32 mismatch"* ]]
	[ ! -e out.envd ]
	printf 'not a diff stream at all, just text\n' > text.envd
	run --separate-stderr envjudge text.envd
	[ "$status" -eq 2 ]
	[ "$stderr" = "envjudge: text.envd: byte 0: bad signature (not an envsync diff stream)" ]
	run envjudge missing.envd
	[ "$status" -eq 2 ]
	[[ "$output" == "envjudge: missing.envd: "* ]]
	# a truncated stream on a pipe: nothing complete comes out
	run --separate-stderr bash -c 'head -c 300 d.envd | envjudge > piped.envd'
	[ "$status" -eq 2 ]
	run envdiff -t piped.envd
	[ "$status" -eq 2 ]
}

@test "refuses to write the binary stream to a terminal" {
	command -v script >/dev/null || skip "script(1) is not installed: no pseudo-terminal"
	envdiff standby.fd active.fd > d.envd || [ $? -eq 1 ]
	run script -qec "envjudge d.envd" /dev/null
	[ "$status" -eq 2 ]
	[[ "$output" == *"envjudge: refusing to write binary data to a terminal"* ]]
	[[ "$output" != *ENVSDIFF* ]]
	# a file or a pipe is fine, and -f forces the terminal
	run script -qec "envjudge d.envd | cat > piped.envd" /dev/null
	[ "$status" -eq 0 ]
	cmp piped.envd <(envjudge d.envd)
	run script -qec "envjudge -f d.envd" /dev/null
	[ "$status" -eq 0 ]
	[[ "$output" == *ENVSDIFF* ]]
	# -q writes nothing, so a terminal is fine
	run script -qec "envjudge -q d.envd" /dev/null
	[ "$status" -eq 0 ]
}

# A calibration whose costs make a delta of a few spots cheaper than a full
# copy of 1 MiB: delta = 100 us + 50 us/spot + 10 ns/byte + 20 us/block,
# full = 100 us + FULL_PER_BYTE ns/byte.
write_cal() { # FILE FULL_PER_BYTE
	cat > "$1" <<-CAL
	envsync-calibration 1
	# measured on a test medium
	medium /dev/vdz
	date 2026-01-01T00:00:00Z
	block_size 4096
	item_size 1048576
	delta_fixed_ns 100000
	delta_per_spot_ns 50000
	delta_per_byte_ns 10
	delta_per_block_ns 20000

	full_fixed_ns 100000
	full_per_byte_ns $2
	point 4096 1 2
	CAL
}

@test "-c CALFILE: delta when its predicted time is at most a full copy's" {
	envdiff standby.fd active.fd > d.envd || [ $? -eq 1 ]
	# 4 spots, 28 bytes, 4 blocks: delta 0.1 + 0.2 + 0.00028 + 0.08 = 0.38028 ms
	write_cal cheap.cal 1     # full: 0.1 + 1.048576 ms
	write_cal dear.cal 0.1    # full: 0.1 + 0.1048576 ms
	run envjudge -q -c cheap.cal d.envd
	[ "$status" -eq 0 ]
	run envjudge -q -c dear.cal d.envd
	[ "$status" -eq 1 ]
	envjudge -c cheap.cal d.envd > a.envd
	[ "$(decisions a.envd)" = "delta " ]
	envjudge -c dear.cal d.envd > b.envd
	[ "$(decisions b.envd)" = "full " ]
	run --separate-stderr envjudge -v -c cheap.cal -o /dev/null d.envd
	[ "$status" -eq 0 ]
	[[ "$stderr" == "raw: 4 spots, 28 bytes (28 written, 4 records), 4 blocks of 4096, 4 entries, size 1048576: predicted delta 0.380 ms, full 1.149 ms"*"-> delta" ]] || { echo "$stderr"; false; }
	run --separate-stderr envjudge -v -c dear.cal -o /dev/null d.envd
	[[ "$stderr" == *"predicted delta 0.380 ms, full 0.205 ms"*"-> full" ]]
	# the per-block cost counts the blocks the spots touch: 4 spots in one block
	head -c 1048576 /dev/zero > z.old
	cp z.old z.new
	for off in 0 1000 2000 3000; do poke z.new "$off" 01; done
	envdiff z.old z.new > z.envd || [ $? -eq 1 ]
	run --separate-stderr envjudge -v -c cheap.cal -o /dev/null z.envd
	[[ "$stderr" == "raw: 4 spots, 4 bytes (4 written, 4 records), 1 blocks of 4096,"* ]]
	# spots at most 512 bytes apart are journaled and written with the gap
	# between them: 4 spots 100 bytes apart write 301 bytes
	cp z.old z.new
	for off in 0 100 200 300; do poke z.new "$off" 01; done
	envdiff z.old z.new > z.envd || [ $? -eq 1 ]
	run --separate-stderr envjudge -v -c cheap.cal -o /dev/null z.envd
	[[ "$stderr" == "raw: 4 spots, 4 bytes (301 written, 1 records), 1 blocks of 4096,"* ]]
	# a calibration with a cost per journal record (delta_per_record_ns,
	# optional) adds it per record the journal would take: 4 spots 1000
	# bytes apart are 4 records, 0.4 ms more at 100000 ns each; 100 bytes
	# apart one record: 0.1 + 0.2 + 0.003 + 0.02 + 0.1 = 0.423 ms
	write_cal rec.cal 1
	echo 'delta_per_record_ns 100000' >> rec.cal
	run --separate-stderr envjudge -v -c cheap.cal -o /dev/null d.envd
	[[ "$stderr" == *"predicted delta 0.380 ms,"* ]]
	run --separate-stderr envjudge -v -c rec.cal -o /dev/null d.envd
	[[ "$stderr" == *"(28 written, 4 records)"*"predicted delta 0.780 ms,"* ]] || { echo "$stderr"; false; }
	run --separate-stderr envjudge -v -c rec.cal -o /dev/null z.envd
	[[ "$stderr" == *"(301 written, 1 records)"*"predicted delta 0.423 ms,"* ]] || { echo "$stderr"; false; }
}

@test "-c: a dense item is judged as if every entry were counted" {
	# Once a delta's predicted cost passes a full copy's, envjudge stops
	# counting the item's entries (what a delta costs only grows); -v
	# counts them all. Item a: 1 MiB whose first 768 KiB differ, 98304
	# entries: delta 0.1 + 0.05 + 7.86 + 3.84 = 11.854 ms, full 0.1 +
	# FULL_PER_BYTE x 1.048576 ms (at 11 and 11.2 a goes full, 11.2 only
	# by its spot's 0.05 ms; at 11.26, 11.907 ms, delta by 0.053 ms); item
	# b after it: 64 KiB, one byte differs.
	head -c 1048576 /dev/zero > a1
	{ head -c 786432 /dev/zero | tr '\0' '\377'; head -c 262144 /dev/zero; } > a2
	head -c 65536 /dev/zero > b1
	cp b1 b2
	poke b2 7 01
	envdump -o old.env -r 1 a=a1 b=b1
	envdump -o new.env -r 2 a=a2 b=b2
	envdiff old.env new.env > d.envd || [ $? -eq 1 ]
	seen=
	for fpb in 0.1 1 11 11.2 11.26 11.4 12 20; do
		write_cal c.cal "$fpb"
		envjudge -c c.cal d.envd > quick.envd 2>/dev/null
		envjudge -v -c c.cal -o counted.envd d.envd 2>/dev/null
		cmp quick.envd counted.envd
		seen+="$(decisions quick.envd)/"
	done
	# both ways, and the small item after a settled one is judged anew
	[ "$seen" = "full full /full full /full delta /full delta /delta delta /delta delta /delta delta /delta delta /" ] ||
		{ echo "$seen"; false; }
}

@test "envapply -c CALFILE judges in the same process, as envjudge -c would" {
	envdiff standby.fd active.fd > d.envd || [ $? -eq 1 ]
	write_cal cheap.cal 1
	write_cal dear.cal 0.1
	cp standby.fd t.fd
	for c in cheap dear; do
		envjudge -c $c.cal d.envd | envapply -n -s active.fd t.fd > piped.$c
		envapply -n -c $c.cal -s active.fd t.fd d.envd > one.$c
		cmp piped.$c one.$c
	done
	grep -q 'delta: 4 spots' one.cheap
	grep -q 'full: copy 1048576 bytes from active.fd' one.dear
	# the stream's own decisions give way: judged delta, applied full
	envjudge -r 1 d.envd > j.envd
	[ "$(decisions j.envd)" = "delta " ]
	envapply -n -c dear.cal -s active.fd t.fd j.envd | grep -q 'full: copy'
	envapply -c dear.cal -s active.fd t.fd d.envd
	cmp t.fd active.fd
	# a bad calibration: one line, exit 2, before the target is touched
	rm -f .t.fd.envsync-*
	cp standby.fd t.fd
	sed -e 's/^delta_per_spot_ns .*/delta_per_spot_ns -5/' cheap.cal > bad.cal
	run --separate-stderr envapply -c bad.cal -s active.fd t.fd d.envd
	one_error "envapply: bad.cal: line 8: delta_per_spot_ns: '-5' is not a non-negative number"
	cmp t.fd standby.fd
	[ -z "$(find . -name '.t.fd.envsync-*')" ]
	run --separate-stderr envapply -c cheap.cal --recover t.fd
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"--recover and --rollback take only TARGET"* ]]
}

@test "-c: invalid calibration files exit 2 naming the file and the line" {
	envdiff standby.fd active.fd > d.envd || [ $? -eq 1 ]
	write_cal good.cal 1
	# sed edit of good.cal | the message expected
	while IFS='|' read -r edit msg; do
		sed -e "$edit" good.cal > bad.cal
		run --separate-stderr envjudge -c bad.cal d.envd
		[ "$status" -eq 2 ] || { echo "$edit: status $status"; return 1; }
		[ -z "$output" ] || { echo "$edit: wrote a stream"; return 1; }
		[ "${#stderr_lines[@]}" -eq 1 ] || { echo "$edit: $stderr"; return 1; }
		[ "$stderr" = "envjudge: bad.cal: $msg" ] || { echo "$edit: got '$stderr' want '$msg'"; return 1; }
	done <<-'CASES'
	s/^delta_per_spot_ns .*/delta_per_spot_ns -5/|line 8: delta_per_spot_ns: '-5' is not a non-negative number
	s/^delta_per_byte_ns .*/delta_per_byte_ns ten/|line 9: delta_per_byte_ns: 'ten' is not a non-negative number
	s/^full_per_byte_ns .*/full_per_byte_ns 1x/|line 13: full_per_byte_ns: '1x' is not a non-negative number
	s/^full_per_byte_ns .*/full_per_byte_ns nan/|line 13: full_per_byte_ns: 'nan' is not a non-negative number
	s/^block_size .*/block_size 0/|line 5: block_size: '0' is not a positive integer
	s/^item_size .*/item_size -1/|line 6: item_size: '-1' is not a positive integer
	s/^item_size .*/item_size 1.5/|line 6: item_size: '1.5' is not a positive integer
	s/^item_size/item_sizes/|line 6: unknown key 'item_sizes'
	s/^delta_fixed_ns 100000/delta_fixed_ns/|line 7: expected 'key value'
	s/^block_size 4096/block_size 4096 8192/|line 5: expected 'key value'
	s/^envsync-calibration 1/envsync-calibration 2/|line 1: unsupported calibration format 2
	/^envsync-calibration/d|line 1: not an envsync calibration (missing 'envsync-calibration 1')
	CASES
	# a missing key has no line of its own: the message names the key
	sed -e '/^full_fixed_ns/d' good.cal > bad.cal
	run --separate-stderr envjudge -c bad.cal d.envd
	[ "$status" -eq 2 ]
	[ "$stderr" = "envjudge: bad.cal: missing key 'full_fixed_ns'" ]
	run envjudge -c nothere.cal d.envd
	[ "$status" -eq 2 ]
	[[ "$output" == "envjudge: nothere.cal: cannot open calibration: "* ]]
}

@test "usage errors exit 2" {
	envdiff standby.fd active.fd > d.envd || [ $? -eq 1 ]
	for args in "-t 1 -r 0.5" "-t 1 -c x.cal" "-q -o out" "-m lines" "-r -1" "-r abc" \
		"-t abc" "-t -1" "d.envd d.envd"; do
		# shellcheck disable=SC2086 # $args is a list of options, split on purpose
		run envjudge $args d.envd
		[ "$status" -eq 2 ] || { echo "$args: $status"; return 1; }
	done
	[ ! -e out ]
	run envjudge --version
	[ "$status" -eq 0 ]
	[[ "$output" == "envjudge (envsync) "* ]]
	run envjudge --help
	[[ "$output" == *"Exit status"* ]]
}

@test "a removed item is nothing to copy: it never makes -q report full" {
	printf 'abcdefgh' > keep
	head -c 600 /dev/zero | tr '\0' x > gone
	envdump -r 1 keep=keep gone=gone -o old.env
	envdump -r 2 keep=keep -o new.env
	envdiff old.env new.env > d.envd || [ $? -eq 1 ]
	run envjudge -q -r 1 d.envd
	[ "$status" -eq 0 ]
}
