#!/usr/bin/env bats
# roundtrip.bats: generated data through dump, list, extract and diff. The
# exact entries of the interesting cases (the Data/Area/Cont boundaries,
# items growing, shrinking, coming and going) are kept in t/expected/ and
# compared exactly, so a change of the format shows in review. Set
# ES_REGEN=1 to rewrite them (then read the diff!).
load common

# Build item files NAME.a (base) and NAME.b (result) of SIZE pattern bytes.
pair() { # NAME SIZE SEED
	patfile "$1.a" "$2" "$3"
	cp "$1.a" "$1.b"
}

# The hex bytes 01 02 .. N, the XOR of a run of N bytes.
seqhex() { # N
	local i
	for ((i = 1; i <= $1; i++)); do printf '%02x' "$i"; done
}

# Images base.env (rev 1) and result.env (rev 2) of the items NAME.a / NAME.b.
images() { # NAME...
	local args_a=() args_b=() n
	for n in "$@"; do
		[ -e "$n.a" ] && args_a+=("$n=$n.a")
		[ -e "$n.b" ] && args_b+=("$n=$n.b")
	done
	envdump -r 1 "${args_a[@]}" -o base.env
	envdump -r 2 "${args_b[@]}" -o result.env
}

# Check that each item's listing, XORed into its base, gives its result.
check_xor() { # NAME...
	local n
	envdiff -t base.env result.env > listing || [ $? -eq 1 ]
	for n in "$@"; do
		if [ -e "$n.a" ]; then cp "$n.a" base.item; else : > base.item; fi
		xor_apply base.item rebuilt "$n" < listing
		if [ -e "$n.b" ]; then
			cmp rebuilt "$n.b"
		else
			[ ! -s rebuilt ]
		fi
	done
}

@test "runs of 1, 8, 9, 16 and 17 bytes: Data up to 8, then Area and Conts" {
	pair r1 40 1 && xorpoke r1.b 5 "$(seqhex 1)"
	pair r8 40 2 && xorpoke r8.b 3 "$(seqhex 8)"
	pair r9 40 3 && xorpoke r9.b 3 "$(seqhex 9)"
	pair r16 40 4 && xorpoke r16.b 0 "$(seqhex 16)"
	pair r17 40 5 && xorpoke r17.b 23 "$(seqhex 17)"
	pair r24 40 6 && xorpoke r24.b 8 "$(seqhex 24)"
	# the first and the last byte; two runs one equal byte apart
	pair ends 40 7 && xorpoke ends.b 0 80 && xorpoke ends.b 39 01
	pair gap 40 8 && xorpoke gap.b 10 0101 && xorpoke gap.b 13 02
	pair same 40 9
	images r1 r8 r9 r16 r17 r24 ends gap same
	run envdiff -t base.env result.env
	[ "$status" -eq 1 ]
	expect_output runs.t
	run envdiff --stat base.env result.env
	[ "$status" -eq 1 ]
	expect_output runs.stat
	check_xor r1 r8 r9 r16 r17 r24 ends gap same
}

@test "items grow, shrink, appear and vanish; empty and 1-byte items" {
	pair grow 10 1 && printf 'more bytes, twenty!!' >> grow.b
	pair shrink 30 2 && head -c 10 shrink.a > shrink.b
	# grows by zero bytes: resized, but the XOR has no entries
	pair zgrow 10 3 && head -c 6 /dev/zero >> zgrow.b
	pair one 1 4 && xorpoke one.b 0 ff
	pair onesame 1 5
	: > empty.a && : > empty.b
	: > emptyadd.b
	: > emptygone.a
	printf 'from nothing' > fill.b && : > fill.a
	printf 'to nothing' > drain.a && : > drain.b
	printf 'new item' > added.b
	printf 'old item' > gone.a
	images grow shrink zgrow one onesame empty emptyadd emptygone fill drain added gone
	run envdiff -t base.env result.env
	[ "$status" -eq 1 ]
	expect_output sizes.t
	run envdiff --stat base.env result.env
	[ "$status" -eq 1 ]
	expect_output sizes.stat
	check_xor grow shrink zgrow one onesame empty emptyadd emptygone fill drain added gone
}

@test "runs across the 4 KiB blocks and the 256 KiB read chunks" {
	zerofile big.a 300000
	cp big.a big.b
	poke big.b 0 aa
	poke big.b 4095 0102
	poke big.b 8190 "$(seqhex 12)"
	poke big.b 262140 "$(seqhex 20)"
	poke big.b 299999 ff
	images big
	run envdiff -t base.env result.env
	[ "$status" -eq 1 ]
	expect_output chunks.t
	check_xor big
}

@test "a run longer than 1 MiB is split into adjacent runs, one spot" {
	n=$((1048576 + 16))
	zerofile long.a $n
	head -c $n /dev/zero | tr '\0' '\377' > long.b
	images long
	envdiff -o d.envd base.env result.env || [ $? -eq 1 ]
	entries=$((1 + 1048576 / 8 - 1 + 1 + 1))
	[ "$(stat -c %s d.envd)" -eq $((48 + 96 + entries * 24 + 48 + 24)) ]
	run envdiff --stat d.envd
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "long                     changed     1048592 -> 1048592           1 spots    1048592 bytes   131074 entries" ]
	# the second run starts where the first ends
	run bash -c "envdiff -t d.envd | grep -v Cont"
	[ "${lines[2]}" = "  Area    0x0000000000000000  1048576 ffffffffffffffff" ]
	[ "${lines[3]}" = "  Area    0x0000000000100000       16 ffffffffffffffff" ]
}

@test "images in, exact bytes out: dump, list, extract, restamp" {
	names=()
	srcs=()
	for i in 0 1 2 3 4 5 6 7; do
		size=$(((i * 977 + i * i * 131) % 5000))
		patfile "item$i" "$size" "$((i + 20))"
		names+=("item$i")
		srcs+=("item$i=item$i")
	done
	: > item8 && names+=(item8) && srcs+=(item8=item8)
	envdump -r 1234 "${srcs[@]}" -o a.env
	run envdump -l a.env
	[ "${lines[0]}" = "revision 1234" ]
	k=1
	for n in "${names[@]}"; do
		[ "${lines[k]}" = "$(printf '%s %12d %s' "$(crc32 -x < "$n")" "$(stat -c %s "$n")" "$n")" ]
		k=$((k + 1))
	done
	[ "${#lines[@]}" -eq 10 ]
	envrev --bump a.env > b.env
	for n in "${names[@]}"; do
		envdump -x "$n" a.env | cmp - "$n"
		envdump -x "$n" b.env | cmp - "$n"
	done
	# the image is exactly header, directory, and the items in order
	cat "${names[@]}" | cmp - <(tail -c +$((32 + 9 * 80 + 1)) a.env)
}

@test "random changes: the listing is the XOR, --stat adds up, raw and image agree" {
	for seed in 1 2 3 4; do
		RANDOM=$seed
		size=$((RANDOM % 3000 + 1))
		patfile x.a "$size" "$seed"
		cp x.a x.b
		for ((k = 0; k < RANDOM % 12; k++)); do
			off=$((RANDOM % size))
			len=$((RANDOM % 30 + 1))
			[ $((off + len)) -le "$size" ] || len=$((size - off))
			fliprun x.b "$off" "$len"
		done
		case $((seed % 3)) in
		1) head -c $((size / 2)) x.b > x.c && mv x.c x.b ;; # shrinks
		2) patfile x.c $((seed * 50)) 99 && cat x.c >> x.b ;; # grows
		esac
		images x
		check_xor x
		# the raw files give the same entries as the images, under "raw"
		envdiff -t x.a x.b > raw.t || [ $? -eq 1 ]
		envdiff -t base.env result.env | sed -n '/^item x:/,/^end x:/p' |
			sed 's/^item x:/item raw:/; s/^end x:/end raw:/' > img.t || :
		diff -u <(tail -n +2 raw.t) img.t
		# --stat's total is the sum of the end records
		envdiff -o d.envd base.env result.env || [ $? -eq 1 ]
		run envdiff --stat d.envd
		ends=$(envdiff -t d.envd | grep '^end ' | sed 's/.*, \([0-9]*\) entries, \([0-9]*\) spots, \([0-9]*\) bytes,.*/\1 \2 \3/')
		read -r e s b <<< "$ends"
		[ "${lines[1]}" = "1 of 1 items changed, $s spots, $b differing bytes, $e entries, stream $(stat -c %s d.envd) bytes" ]
	done
}

@test "diff, restamp, diff again: revisions and entries survive" {
	pair cfg 100 3 && xorpoke cfg.b 50 0a0b
	images cfg
	envrev -s 77 base.env > b77.env
	envrev -s 78 result.env > r78.env
	envdiff -t base.env result.env | tail -n +2 > l1 || :
	run envdiff -t b77.env r78.env
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "diff: base revision 77 -> result revision 78, 1 item" ]
	diff -u l1 <(printf '%s\n' "${lines[@]:1}")
}
