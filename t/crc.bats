#!/usr/bin/env bats
# crc.bats: es_crc32 (lib/crc.c, carry-less multiplication folding where the
# CPU has PCLMULQDQ) gives exactly zlib's crc32 for every length, alignment,
# initial value and way of cutting a buffer into pieces, with the fast path
# and with the zlib fallback; and envdiff's CRC32s are zlib's.
load common

setup_file() {
	export CRCCHECK="$BATS_FILE_TMPDIR/crccheck"
	cc -std=gnu11 -O2 -I"$ES_SRCDIR/lib" -I"$ES_BUILDDIR" -o "$CRCCHECK" \
		"$ES_SRCDIR/t/crccheck.c" "$ES_BUILDDIR/lib/libenvsync.a" -lz
}

# The little-endian 32-bit number at byte OFFSET of FILE, in 8 hex digits.
le32() { # FILE OFFSET
	local h
	h=$(xxd -p -s "$2" -l 4 "$1")
	echo "${h:6:2}${h:4:2}${h:2:2}${h:0:2}"
}

@test "es_crc32 equals zlib for lengths 0..4200 at alignments 0..63 and long buffers" {
	run "$CRCCHECK" all
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *" 0 mismatches" ]]
}

@test "es_crc32 equals zlib on long buffers fed in random pieces" {
	run "$CRCCHECK" pieces
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "es_crc32 equals zlib with the fast path switched off" {
	run "$CRCCHECK" all zlib
	[ "$status" -eq 0 ]
	run "$CRCCHECK" pieces zlib
	[ "$status" -eq 0 ]
}

@test "the folding path is used where the CPU has PCLMULQDQ" {
	grep -qw pclmulqdq /proc/cpuinfo || skip "this CPU has no PCLMULQDQ"
	[ "$(uname -m)" = x86_64 ] || skip "folding is x86-64 only"
	run "$CRCCHECK" fast
	[ "$output" = 1 ]
}

@test "envdiff's item CRC32s are zlib's, for sizes around its chunk boundaries" {
	for size in 0 1 63 64 65536 65599 262143 262144 262145 1048577; do
		randfile base.raw "$size" 1
		randfile result.raw "$size" 2
		read -r zb eb < <("$CRCCHECK" file base.raw)
		read -r zr er < <("$CRCCHECK" file result.raw)
		[ "$zb" = "$eb" ] && [ "$zr" = "$er" ]
		run envdiff --stat base.raw result.raw
		[ "$status" -le 1 ]
		run envdiff -o d.envd base.raw result.raw
		[ "$status" -le 1 ]
		# the item end record (48 bytes) sits before the 24-byte stream end;
		# its base and result CRC32s are at bytes 4 and 8, little-endian
		local len
		len=$(stat -c %s d.envd)
		[ "$(le32 d.envd $((len - 72 + 4)))" = "$zb" ]
		[ "$(le32 d.envd $((len - 72 + 8)))" = "$zr" ]
	done
}
