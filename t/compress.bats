#!/usr/bin/env bats
# compress.bats: the compressed diff stream (envsync(5), COMPRESSION):
# envdiff -z writes the stream in a gzip container, envjudge keeps the input's
# form (or -z / -d), and every reader takes both forms; a truncated, corrupt or
# extended compressed stream gets one error line, exit 2, and leaves the target
# as it was; memory stays bounded however far the data expands.
load common

setup_file() {
	sh "$ES_SRCDIR/samples/make-samples" "$BATS_FILE_TMPDIR/samples" >/dev/null
}

setup() {
	cd "$BATS_TEST_TMPDIR" || exit 1
	cp "$BATS_FILE_TMPDIR"/samples/* .
	cp standby.env saved.env
	cp standby.fd saved.fd
}

is_gzip() { # FILE
	[ "$(xxd -p -l 2 "$1")" = 1f8b ]
}

is_plain() { # FILE
	[ "$(head -c 8 "$1")" = ENVSDIFF ]
}

@test "envdiff -z: a gzip container around exactly the plain stream" {
	run envdiff -z -o img.gz standby.env active.env
	[ "$status" -eq 1 ]
	envdiff -o img.envd standby.env active.env || [ $? -eq 1 ]
	is_gzip img.gz
	gzip -dc img.gz | cmp - img.envd
	# every level, and stdout
	for l in 1 6 9; do
		envdiff --compress="$l" standby.fd active.fd > raw$l.gz || [ $? -eq 1 ]
		is_gzip raw$l.gz
	done
	envdiff standby.fd active.fd > raw.envd || [ $? -eq 1 ]
	gzip -dc raw1.gz | cmp - raw.envd
	gzip -dc raw9.gz | cmp - raw.envd
	# with -t beside -o, -o's stream is compressed and the listing is the same
	run envdiff -z -t -o both.gz standby.env active.env
	[ "$status" -eq 1 ]
	is_gzip both.gz
	gzip -dc both.gz | cmp - img.envd
}

@test "envdiff -z: bad levels and meaningless uses are usage errors" {
	envdiff -o img.envd standby.env active.env || [ $? -eq 1 ]
	for bad in 0 10 x -1; do
		run envdiff --compress="$bad" standby.env active.env
		[ "$status" -eq 2 ]
		[[ "$output" == *"not a level 1 to 9"* ]]
	done
	run envdiff -z -t img.envd
	[ "$status" -eq 2 ]
	run envdiff -z --stat standby.env active.env
	[ "$status" -eq 2 ]
	run envdiff -z --explain auto standby.fd active.fd
	[ "$status" -eq 2 ]
}

@test "-t and --stat list a compressed stream exactly as the plain one" {
	envdiff -o img.envd standby.env active.env || [ $? -eq 1 ]
	envdiff -z -o img.gz standby.env active.env || [ $? -eq 1 ]
	for opt in -t --stat; do
		envdiff "$opt" img.envd > plain.txt || [ $? -eq 1 ]
		run envdiff "$opt" img.gz
		[ "$status" -eq 1 ]
		[ "$output" = "$(cat plain.txt)" ]
		# from a pipe too
		run bash -c "envdiff $opt - < img.gz"
		[ "$status" -eq 1 ]
		[ "$output" = "$(cat plain.txt)" ]
	done
}

@test "envjudge keeps the input's form; -z compresses, -d decompresses" {
	envdiff -o img.envd standby.env active.env || [ $? -eq 1 ]
	envdiff -z -o img.gz standby.env active.env || [ $? -eq 1 ]
	envjudge img.envd > j.envd
	is_plain j.envd
	envjudge img.gz > jz.gz
	is_gzip jz.gz
	gzip -dc jz.gz | cmp - j.envd
	envjudge -d img.gz > jd.envd
	cmp jd.envd j.envd
	envjudge -z img.envd > jz2.gz
	is_gzip jz2.gz
	gzip -dc jz2.gz | cmp - j.envd
	envjudge --compress=1 -o jz1.gz < img.gz
	gzip -dc jz1.gz | cmp - j.envd
	# -q reads either form the same
	run envjudge -q -r 0.000001 img.gz
	[ "$status" -eq 1 ]
	run envjudge -q img.gz
	[ "$status" -eq 0 ]
	# no stream is written: -z has nothing to compress
	run envjudge -q -z img.gz
	[ "$status" -eq 2 ]
	# -z is no longer --size: an old "--calibrate T -z BYTES" is told so
	run envjudge --calibrate standby.fd -z 4096
	[ "$status" -eq 2 ]
	[[ "$output" == *"--size BYTES"* ]]
}

@test "envdiff -z | envjudge | envapply: the same result as the plain pipeline" {
	cp standby.env plain.env
	envdiff standby.env active.env | envjudge | envapply -s active.env plain.env
	envdiff -z standby.env active.env | envjudge | envapply -s active.env standby.env
	cmp standby.env active.env
	cmp standby.env plain.env
	# raw, judged both ways (delta and full), from a file
	envdiff -z -o raw.gz standby.fd active.fd || [ $? -eq 1 ]
	envjudge raw.gz > d.gz
	envjudge -t 0 raw.gz > f.gz
	is_gzip d.gz
	cp saved.fd t1.fd
	cp saved.fd t2.fd
	envapply -s active.fd t1.fd d.gz
	envapply -s active.fd t2.fd f.gz
	cmp t1.fd active.fd
	cmp t2.fd active.fd
	# and rolled back
	envapply --rollback t1.fd
	cmp t1.fd saved.fd
}

@test "streams compressed by gzip(1), and zlib containers, are read too" {
	envdiff -o raw.envd standby.fd active.fd || [ $? -eq 1 ]
	gzip -9c raw.envd > raw.gz
	run envdiff -t raw.gz
	[ "$status" -eq 1 ]
	envapply -s active.fd standby.fd raw.gz
	cmp standby.fd active.fd
	perl -MCompress::Zlib -e 1 2>/dev/null || skip "perl's Compress::Zlib is not installed"
	perl -MCompress::Zlib -e 'local $/; print compress(<STDIN>)' < raw.envd > raw.zlib
	[ "$(xxd -p -l 1 raw.zlib)" = 78 ]
	envdiff -t raw.zlib > z.txt || [ $? -eq 1 ]
	envdiff -t raw.envd > p.txt || [ $? -eq 1 ]
	cmp z.txt p.txt
}

@test "a truncated compressed stream, cut anywhere: exit 2, target unchanged" {
	envdiff -z standby.env active.env | envjudge > img.gz
	local n cut
	n=$(stat -c %s img.gz)
	for ((cut = 2; cut < n; cut += (cut < 40 ? 3 : 97))); do
		head -c "$cut" img.gz > cut.gz
		xrun envapply -s active.env standby.env cut.gz
		one_error "envapply: cut.gz: compressed byte $cut: truncated compressed stream (*)" ||
			{ echo "cut at $cut"; return 1; }
		cmp standby.env saved.env
	done
	# the last bytes (the gzip trailer), and from a pipe
	for cut in $((n - 8)) $((n - 1)); do
		xrun bash -c "head -c $cut img.gz | envapply -s active.env standby.env"
		one_error "envapply: (stdin): compressed byte $cut: truncated compressed stream (*)" ||
			{ echo "cut at $cut"; return 1; }
		cmp standby.env saved.env
	done
}

@test "a corrupt compressed stream (any byte flipped): exit 2, target unchanged" {
	envdiff -z standby.fd active.fd | envjudge > raw.gz
	local n off
	n=$(stat -c %s raw.gz)
	# the trailer's CRC32 and length, which zlib checks
	cp raw.gz flip.gz
	flip flip.gz $((n - 6))
	xrun envapply standby.fd flip.gz
	one_error "envapply: flip.gz: compressed byte $((n - 4)): corrupt compressed stream (zlib: incorrect data check)"
	cp raw.gz flip.gz
	flip flip.gz $((n - 2))
	xrun envapply standby.fd flip.gz
	one_error "envapply: flip.gz: compressed byte $n: corrupt compressed stream (zlib: incorrect length check)"
	cmp standby.fd saved.fd
	# every other byte: zlib's checks or the stream's own catch it; bytes 4
	# to 9 of the gzip header (time, extra flags, OS) are informative only:
	# they change nothing that is read, so they are not checked
	for ((off = 0; off < n; off++)); do
		((off < 4 || off > 9)) || continue
		cp raw.gz flip.gz
		flip flip.gz "$off" 5a
		xrun envapply standby.fd flip.gz
		[ "$status" -eq 2 ] || { echo "flipped byte $off: exit $status"; return 1; }
		[ "${#stderr_lines[@]}" -eq 1 ] || { echo "flipped byte $off: $stderr"; return 1; }
		[[ "$stderr" == "envapply: flip.gz: "* ]] || { echo "flipped byte $off: $stderr"; return 1; }
		cmp standby.fd saved.fd
	done
}

@test "bytes after the compressed stream, or a second gzip member: refused" {
	envdiff -z -o raw.gz standby.fd active.fd || [ $? -eq 1 ]
	local n
	n=$(stat -c %s raw.gz)
	{ cat raw.gz; printf x; } > long.gz
	xrun envapply standby.fd long.gz
	one_error "envapply: long.gz: compressed byte $n: data after the end of the compressed stream"
	cat raw.gz raw.gz > two.gz
	xrun envdiff -t two.gz
	one_error "envdiff: two.gz: compressed byte $n: data after the end of the compressed stream"
	cmp standby.fd saved.fd
}

@test "a compressed stream that expands to 256 MiB is read in bounded memory" {
	envdiff standby.fd active.fd > raw.envd || [ $? -eq 1 ]
	# 256 MiB of zero bytes after the item record: 11184810 Invalid entries,
	# each one valid, until the item end record's counts disagree with them
	{ head -c 144 raw.envd; head -c $((11184810 * 24)) /dev/zero; tail -c +145 raw.envd; } |
		gzip -1c > bomb.gz
	[ "$(stat -c %s bomb.gz)" -lt 2000000 ]
	lim='ulimit -v 65536;'
	no_ulimit_v && lim=''
	run --separate-stderr bash -c "$lim envjudge -q bomb.gz"
	one_error "envjudge: bomb.gz: item 'raw' end (byte *): counts (* entries, * spots, * bytes) disagree with the entries (11184*"
}

# The gzip header's extra-flags byte: 2 when deflated at level 9, 4 at 1.
xfl() { # FILE
	xxd -p -s 8 -l 1 "$1"
}

@test "a stream of at most 4 KiB is deflated at level 9 whatever the level; a longer one at its level" {
	randfile old 65536 8
	cp old one
	poke one 1000 55
	cp old many
	local i
	for ((i = 0; i < 400; i++)); do
		poke many $((i * 160 + 3)) 5a
	done
	envdiff old one > one.envd || [ $? -eq 1 ]
	envdiff old many > many.envd || [ $? -eq 1 ]
	[ "$(stat -c %s one.envd)" -le 4096 ]
	[ "$(stat -c %s many.envd)" -gt 4096 ]
	for l in 1 6 9; do
		envdiff -z"$l" old one > one$l.gz || [ $? -eq 1 ]
		envdiff -z"$l" old many > many$l.gz || [ $? -eq 1 ]
		gzip -dc one$l.gz | cmp - one.envd
		gzip -dc many$l.gz | cmp - many.envd
		[ "$(xfl one$l.gz)" = 02 ]
	done
	cmp one1.gz one9.gz
	[ "$(xfl many1.gz)" = 04 ]
	[ "$(xfl many6.gz)" = 00 ]
	[ "$(xfl many9.gz)" = 02 ]
	# level 9 is smaller on the small stream than level 1 would be
	[ "$(stat -c %s one1.gz)" -lt "$(gzip -1 -n -c one.envd | wc -c)" ]
}

@test "compressed is smaller on a sparse pair" {
	randfile old 4194304 7
	cp old new
	local i
	for ((i = 0; i < 100; i++)); do
		poke new $((i * 41000 + 17)) deadbeef
	done
	envdiff old new > p.envd || [ $? -eq 1 ]
	envdiff -z old new > z.gz || [ $? -eq 1 ]
	local p z
	p=$(stat -c %s p.envd)
	z=$(stat -c %s z.gz)
	echo "plain $p, compressed $z"
	[ "$p" -ge $((48 + 96 + 100 * 24 + 48 + 24)) ]
	[ $((z * 2)) -lt "$p" ]
}
