#!/usr/bin/env bats
# envdiff.bats: making diff streams (-o, -f, -R), listing and summarizing
# them (-t, --stat), with two operands or one (an existing stream), and the
# exit codes 0/1/2/3.
load common

# base.env (rev 41) and result.env (rev 42): "config" changes one byte,
# "bios" is the same, "old" is removed, "new" is added.
mkpair() {
	printf 'ntp=10.0.0.1\n' > config.1
	printf 'ntp=10.0.0.2\n' > config.2
	patfile bios 2000 5
	printf 'legacy' > old
	printf 'fresh' > new
	envdump -r 41 config=config.1 bios=bios old=old -o base.env
	envdump -r 42 config=config.2 bios=bios new=new -o result.env
}

@test "envdiff --help and --version" {
	run envdiff --version
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "envdiff (envsync) "* ]]
	run envdiff --help
	[ "$status" -eq 0 ]
	for opt in --output --force --stat --text --raw; do
		[[ "$output" == *"$opt"* ]]
	done
	[[ "$output" == *"Exit status: 0 no difference, 1 differences, 2 trouble, 3"* ]]
}

@test "envdiff usage errors exit 2" {
	mkpair
	envdiff -o d.envd base.env result.env || [ $? -eq 1 ]
	for args in "" "base.env" "a b c" "-t --stat base.env" "-t --stat base.env result.env" "--bogus a b" \
		"-t -o x.envd d.envd" "--stat -R d.envd"; do
		# shellcheck disable=SC2086
		run envdiff $args
		[ "$status" -eq 2 ] || { echo "envdiff $args: status $status"; false; }
	done
	[ ! -e x.envd ]
}

@test "envdiff of images that differ exits 1 and writes a stream" {
	mkpair
	xrun envdiff -o d.envd base.env result.env
	[ "$status" -eq 1 ]
	[ -z "$output$stderr" ]
	no_temps d.envd
	[ "$(head -c 8 d.envd)" = ENVSDIFF ]
	# header: version 1, flags 3 (both sides are images), 4 items, revisions
	[ "$(getle d.envd 8 2)" -eq 1 ]
	[ "$(getle d.envd 10 2)" -eq 3 ]
	[ "$(getle d.envd 12 4)" -eq 4 ]
	[ "$(getle d.envd 16 8)" -eq 41 ]
	[ "$(getle d.envd 24 8)" -eq 42 ]
	# tail: 'Z', the stream length, the CRC32 of everything before it
	len=$(stat -c %s d.envd)
	[ "$(tail -c 24 d.envd | head -c 1)" = Z ]
	[ "$(getle d.envd $((len - 16)) 8)" -eq "$len" ]
	[ "$(tail -c 4 d.envd | xxd -p)" = "$(head -c $((len - 4)) d.envd | crc32)" ]
	envdiff base.env result.env > s.envd || [ $? -eq 1 ]
	cmp d.envd s.envd
}

@test "envdiff -t lists every item and entry" {
	mkpair
	run envdiff -t base.env result.env
	[ "$status" -eq 1 ]
	c1=$(crc32 -x < config.1) c2=$(crc32 -x < config.2) cb=$(crc32 -x < bios)
	co=$(crc32 -x < old) cn=$(crc32 -x < new)
	[ "$output" = "diff: base revision 41 -> result revision 42, 4 items
item config: 13 -> 13 bytes
  Data    0x000000000000000b        1 03
end config: changed, CRC32 $c1 -> $c2, 1 entries, 1 spots, 1 bytes, unjudged
item bios: 2000 -> 2000 bytes
end bios: same, CRC32 $cb -> $cb, 0 entries, 0 spots, 0 bytes, unjudged
item new: 0 -> 5 bytes
  Data    0x0000000000000000        5 6672657368
end new: added, CRC32 00000000 -> $cn, 1 entries, 1 spots, 5 bytes, unjudged
item old: 6 -> 0 bytes
  Data    0x0000000000000000        6 6c6567616379
end old: removed, CRC32 $co -> 00000000, 1 entries, 1 spots, 6 bytes, unjudged" ]
}

@test "envdiff --stat summarizes per item and in total" {
	mkpair
	run envdiff --stat base.env result.env
	[ "$status" -eq 1 ]
	[ "$output" = "config                   changed          13 -> 13                1 spots          1 bytes        1 entries
bios                     same           2000 -> 2000              0 spots          0 bytes        0 entries
new                      added             0 -> 5                 1 spots          5 bytes        1 entries
old                      removed           6 -> 0                 1 spots          6 bytes        1 entries
3 of 4 items changed, 3 spots, 12 differing bytes, 3 entries, stream $((48 + 4 * 144 + 3 * 24 + 24)) bytes" ]
}

@test "envdiff with one operand lists or summarizes an existing stream" {
	mkpair
	envdiff -o d.envd base.env result.env || [ $? -eq 1 ]
	run envdiff -t d.envd
	[ "$status" -eq 1 ]
	[ "$output" = "$(envdiff -t base.env result.env)" ]
	run envdiff --stat d.envd
	[ "$status" -eq 1 ]
	[ "$output" = "$(envdiff --stat base.env result.env)" ]
	# the stream byte count is the file's size
	[[ "${lines[4]}" == *", stream $(stat -c %s d.envd) bytes" ]]
	run envdiff -t - < d.envd
	[ "$status" -eq 1 ]
	[ "$output" = "$(envdiff -t d.envd)" ]
	run bash -c 'cat d.envd | envdiff --stat -'
	[ "$status" -eq 1 ]
	[ "$output" = "$(envdiff --stat d.envd)" ]
}

@test "envdiff -t or --stat with -o writes the stream and prints the text" {
	mkpair
	envdiff -o d0.envd base.env result.env || [ $? -eq 1 ]
	run envdiff -t -o d1.envd base.env result.env
	[ "$status" -eq 1 ]
	[ "$output" = "$(envdiff -t d0.envd)" ]
	cmp d0.envd d1.envd
	run envdiff --stat -o d2.envd base.env result.env
	[ "$status" -eq 1 ]
	[ "$output" = "$(envdiff --stat d0.envd)" ]
	cmp d0.envd d2.envd
	no_temps d1.envd
	no_temps d2.envd
}

@test "envdiff: equal revisions and contents exit 0 with a stream of no entries" {
	mkpair
	cp base.env same.env
	run envdiff -o d.envd base.env same.env
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(stat -c %s d.envd)" -eq $((48 + 3 * (96 + 48) + 24)) ]
	run envdiff -t d.envd
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "diff: base revision 41 -> result revision 41, 3 items" ]
	[[ "$output" != *Data* && "$output" != *Area* ]]
	[ "$(grep -c ': same, ' <<< "$output")" -eq 3 ]
	run envdiff --stat d.envd
	[ "$status" -eq 0 ]
	[ "${lines[3]}" = "0 of 3 items changed, 0 spots, 0 differing bytes, 0 entries, stream 504 bytes" ]
}

@test "envdiff: different revisions of equal contents exit 0 too" {
	mkpair
	envrev -s 50 base.env > b50.env
	run envdiff --stat base.env b50.env
	[ "$status" -eq 0 ]
	[[ "${lines[3]}" == "0 of 3 items changed, "* ]]
}

@test "envdiff: equal revisions, different contents are refused (exit 3)" {
	mkpair
	envrev -s 41 result.env > r41.env
	xrun envdiff -o d.envd base.env r41.env
	one_error "envdiff: base.env and r41.env: both at revision 41 but contents differ (3 items: 'config', 'new', 'old')" 3
	[ -z "$output" ]
	no_temps d.envd absent
	xrun envdiff -t base.env r41.env
	one_error "envdiff: base.env and r41.env: *" 3
	[ -z "$output" ]
	xrun bash -c 'envdiff base.env r41.env | wc -c'
	[ "$output" -eq 0 ]
}

@test "envdiff --force diffs images with equal revisions and different contents" {
	mkpair
	envrev -s 41 result.env > r41.env
	xrun envdiff --force -o d.envd base.env r41.env
	[ "$status" -eq 1 ]
	[ -z "$stderr" ]
	run envdiff -t d.envd
	[ "${lines[0]}" = "diff: base revision 41 -> result revision 41, 4 items" ]
	run envdiff -f --stat base.env r41.env
	[ "$status" -eq 1 ]
	[[ "${lines[4]}" == "3 of 4 items changed, "* ]]
}

@test "envdiff: equal revisions, equal sizes and CRC32s but other bytes are refused" {
	mkpair
	cp bios bios2
	xorpoke bios2 1000 "$CRC_COLLIDE"
	envdump -r 41 config=config.1 bios=bios2 old=old -o b2.env
	[ "$(envdump -l base.env)" = "$(envdump -l b2.env)" ]
	xrun envdiff -o d.envd base.env b2.env
	one_error "envdiff: base.env and b2.env: both at revision 41 but contents differ (1 item: 'bios')" 3
	no_temps d.envd absent
	run envdiff -f --stat base.env b2.env
	[ "$status" -eq 1 ]
	[[ "${lines[1]}" == "bios "*" changed "* ]]
}

@test "envdiff of raw files: one item named raw, 0 when identical" {
	patfile r1 3000 9
	cp r1 r2
	run envdiff -t r1 r2
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "diff: base raw -> result raw, 1 item" ]
	[ "${lines[1]}" = "item raw: 3000 -> 3000 bytes" ]
	[ "${#lines[@]}" -eq 3 ]
	flip r2 1234 80
	run envdiff -t r1 r2
	[ "$status" -eq 1 ]
	[ "${lines[2]}" = "  Data    0x00000000000004d2        1 80" ]
	envdiff -o d.envd r1 r2 || [ $? -eq 1 ]
	[ "$(getle d.envd 10 2)" -eq 0 ]
}

@test "envdiff mixes raw files and images: a raw file is the one item 'raw'" {
	patfile r1 300 2
	cp r1 r2
	flip r2 299 01
	envdump -r 7 raw=r2 -o raw.env
	run envdiff -t r1 raw.env
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "diff: base raw -> result revision 7, 1 item" ]
	[ "${lines[2]}" = "  Data    0x000000000000012b        1 01" ]
	run envdiff -t raw.env r2
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "diff: base revision 7 -> result raw, 1 item" ]
	envdiff -o d.envd raw.env r2
	[ "$(getle d.envd 10 2)" -eq 1 ]
	# an image whose items have other names: raw is removed, they are added
	printf 'no zero bytes here' > text
	envdump -r 7 bios=text -o bios.env
	run envdiff --stat text bios.env
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "bios                     added             0 -> 18                1 spots         18 bytes        3 entries" ]
	[ "${lines[1]}" = "raw                      removed          18 -> 0                 1 spots         18 bytes        3 entries" ]
}

@test "envdiff -R treats images as raw bytes" {
	mkpair
	run envdiff -R -t base.env result.env
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "diff: base raw -> result raw, 1 item" ]
	[ "${lines[1]}" = "item raw: $(stat -c %s base.env) -> $(stat -c %s result.env) bytes" ]
	# even two images at the same revision with other contents
	envrev -s 41 result.env > r41.env
	run envdiff --raw --stat base.env r41.env
	[ "$status" -eq 1 ]
	[[ "${lines[0]}" == "raw "* ]]
	cp base.env same.env
	run envdiff -R --stat base.env same.env
	[ "$status" -eq 0 ]
}

@test "envdiff of a missing, directory or pipe raw input is trouble" {
	mkpair
	xrun envdiff base.env nope
	one_error "envdiff: nope: cannot open: No such file or directory"
	mkdir dir
	xrun envdiff dir base.env
	one_error "envdiff: dir: is a directory"
	xrun bash -c 'printf abc | envdiff -R - base.env'
	one_error "envdiff: (stdin): a raw input must be a regular file or block device"
}

@test "envdiff -o leaves an existing file untouched when it fails" {
	mkpair
	printf 'precious' > d.envd
	envrev -s 41 result.env > r41.env
	run envdiff -o d.envd base.env r41.env
	[ "$status" -eq 3 ]
	[ "$(cat d.envd)" = precious ]
	run envdiff -o d.envd base.env nope
	[ "$status" -eq 2 ]
	[ "$(cat d.envd)" = precious ]
	no_temps d.envd
}

@test "envdiff refuses to write a stream to a terminal unless -f" {
	command -v script > /dev/null || skip "no script(1) to give the tool a terminal"
	mkpair
	run script -qec "envdiff base.env result.env" /dev/null
	[ "$status" -eq 2 ]
	[[ "$output" == *"envdiff: refusing to write binary data to a terminal"* ]]
	[[ "$output" != *ENVSDIFF* ]]
	run script -qec "envdiff -f base.env result.env" /dev/null
	[ "$status" -eq 1 ]
	[[ "$output" == ENVSDIFF* ]]
	# text is fine
	run script -qec "envdiff -t base.env result.env" /dev/null
	[ "$status" -eq 1 ]
	[[ "$output" == "diff: base revision 41"* ]]
	run script -qec "envdiff --stat base.env result.env" /dev/null
	[ "$status" -eq 1 ]
	# -o naming the terminal is the terminal
	run script -qec "envdiff -o /dev/tty base.env result.env" /dev/null
	[ "$status" -eq 2 ]
	[[ "$output" == *"envdiff: /dev/tty: refusing to write binary data to a terminal"* ]]
	[ -c /dev/tty ]
}

@test "envdiff to a full disk fails with exit 2 and a message" {
	[ -w /dev/full ] || skip "no /dev/full"
	mkpair
	xrun bash -c 'envdiff base.env result.env > /dev/full'
	one_error "envdiff: (stdout): write error: No space left on device"
	xrun bash -c 'envdiff -t base.env result.env > /dev/full'
	one_error "envdiff: (stdout): write error: No space left on device"
	envdiff -o d.envd base.env result.env || [ $? -eq 1 ]
	xrun bash -c 'envdiff --stat d.envd > /dev/full'
	one_error "envdiff: (stdout): write error: No space left on device"
}

@test "envdiff refuses an image on a pipe with a clear message (it reads both sides at once)" {
	mkpair
	xrun bash -c 'cat base.env | envdiff -o d.envd - result.env'
	one_error "envdiff: (stdin): a pipe cannot be diffed (both inputs are read side by side): save it to a file first"
	[ -z "$output" ]
	no_temps d.envd absent
	xrun bash -c 'cat result.env | envdiff -t base.env -'
	one_error "envdiff: (stdin): a pipe cannot be diffed*"
	[ -z "$output" ]
	# stdin redirected from a file is a file
	envdiff -t - result.env < base.env > out.t || [ $? -eq 1 ]
	diff -u out.t <(envdiff -t base.env result.env)
}
