#!/usr/bin/env bats
# dwrite.bats: a new file written past the page cache (lib/dwrite.c), as a
# full copy writes it: exact whatever the lengths, alignments and gaps of
# its pieces (t/dwrite.c checks one file against the same bytes in memory),
# and through envapply, not left in the page cache.
load common
bats_require_minimum_version 1.5.0

setup() {
	cd "$BATS_TEST_TMPDIR" || exit 1
	DW="$ES_BUILDDIR/t/dwrite"
}

# Skip unless this directory's file system takes O_DIRECT writes.
need_direct() {
	dd if=/dev/zero of=probe bs=4096 count=1 oflag=direct 2>/dev/null ||
		skip "no O_DIRECT on $(stat -f -c %T .)"
	rm -f probe
}

@test "pieces of every length, alignment and gap: the file is exact" {
	local seed
	for seed in $(seq 1 12); do
		run "$DW" f "$seed"
		echo "seed $seed: $output"
		[ "$status" -eq 0 ]
	done
}

@test "a write back into what was written: finished through the cache, exact" {
	local seed
	for seed in 1 2 3; do
		run "$DW" f "$seed" ooo
		echo "seed $seed: $output"
		[ "$status" -eq 0 ]
	done
}

@test "O_DIRECT is used where the file system takes it" {
	need_direct
	run "$DW" f 7
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = direct ]
}

# Pages of FILE in the page cache.
resident() { # FILE
	fincore -b -n -o PAGES "$1"
}

@test "envapply's full copy of 24 MiB: exact, and not through the page cache" {
	need_direct
	command -v fincore >/dev/null || skip "no fincore (util-linux-extra)"
	randfile a $((24 << 20)) 31
	cp a b
	poke b 5000000 ff
	envdiff a b | envjudge -t 0 -o f.envd
	cp a t
	envapply -s b t f.envd
	run resident t # before cmp reads it in
	echo "resident pages of t: $output"
	[ "$output" -lt 64 ]
	cmp t b
}

@test "an image rebuilt with items at unaligned offsets, one full, one grown: exact" {
	# items start after a header of 64 + 80 an item: never on a 4096-byte
	# boundary, so their bytes go through the bounce buffer; b is copied
	# from the source, a and c from the target, and c grows by 2 MiB of
	# zeros and a byte: its padding is a gap between the pieces written,
	# past a block (a hole)
	need_direct
	randfile a1 $((9 << 20)) 41
	randfile b1 4097 42
	randfile c1 $((3 << 20)) 43
	cp a1 a2
	poke a2 7 ee
	randfile b2 4097 44
	{ cat c1; head -c $(((2 << 20) + 5000)) /dev/zero; } >c2
	poke c2 $(((5 << 20) + 4999)) 01
	envdump -o old.env -r 1 a=a1 b=b1 c=c1
	envdump -o new.env -r 2 a=a2 b=b2 c=c2
	envdiff old.env new.env | envjudge -t 10 -o f.envd
	run envapply -n -s new.env old.env f.envd
	echo "$output"
	[[ "$output" == *"b: changed, full"* ]]
	cp old.env t.env
	envapply -s new.env t.env f.envd
	cmp t.env new.env
}
