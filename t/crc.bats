#!/usr/bin/env bats
# crc.bats: es_crc32 (lib/crc.c, carry-less multiplication folding where the
# CPU has PCLMULQDQ or VPCLMULQDQ) gives exactly zlib's crc32 for every
# length, alignment, initial value and way of cutting a buffer into pieces,
# on each of its ways including the zlib fallback; and envdiff's CRC32s are
# zlib's.
load common

setup_file() {
	export CRCCHECK="$ES_BUILDDIR/t/crccheck" # make check builds it
}

# The little-endian 32-bit number at byte OFFSET of FILE, in 8 hex digits.
le32() { # FILE OFFSET
	local h
	h=$(xxd -p -s "$2" -l 4 "$1")
	echo "${h:6:2}${h:4:2}${h:2:2}${h:0:2}"
}

# check_way MOST: both checks with es_crc32 limited to MOST (0 zlib, 1 128-bit
# folding, 2 256-bit folding); the way it really used must be MOST or the
# CPU's best.
check_way() {
	local best
	best=$("$CRCCHECK" path)
	run "$CRCCHECK" all "$1"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "way $(($1 < best ? $1 : best)): 1076024 checked, 0 mismatches" ]
	run "$CRCCHECK" pieces "$1"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "es_crc32 equals zlib (all lengths 0..4200 at alignments 0..63, long, in pieces): best way" {
	check_way 2
}

@test "es_crc32 equals zlib: 128-bit folding" {
	check_way 1
}

@test "es_crc32 equals zlib: the zlib fallback" {
	check_way 0
}

@test "es_crc32_zeros equals zlib over zero bytes (0..5000, 64 KiB, 5 GiB)" {
	run "$CRCCHECK" zeros
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" = *": 15022 checked, 0 mismatches" ]]
}

@test "es_crc32 folds where the CPU can" {
	[ "$(uname -m)" = x86_64 ] || skip "folding is x86-64 only"
	grep -qw pclmulqdq /proc/cpuinfo || skip "this CPU has no PCLMULQDQ"
	local want=1
	grep -qw vpclmulqdq /proc/cpuinfo && grep -qw avx2 /proc/cpuinfo && want=2
	run "$CRCCHECK" path
	[ "$output" = "$want" ]
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
