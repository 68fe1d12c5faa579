#!/usr/bin/env bats
# badinput.bats: hostile and broken env images and diff streams. Each must
# get exactly one line on stderr naming the file, the place and the reason,
# exit status 2, and no output file (nor a temporary one) left behind.
load common

# ---- env images ----
# good.env, revision 41:
#   0 header (32 bytes: magic, version, reserved, count, revision, reserved, CRC32)
#  32 directory entry 0 "settings" (80 bytes: name length, reserved, CRC32, size, name)
# 112 directory entry 1 "config"
# 192 the 1000 bytes of settings, 1192 the 29 bytes of config; 1221 bytes in all
mkgood() {
	patfile settings 1000 7
	printf 'hostname=node-a\nntp=10.0.0.1\n' > config
	envdump -r 41 settings=settings config=config -o good.env
	cp good.env bad.env
}

# Every tool that reads env images refuses FILE with the one line "TOOL: MSG"
# (MSG a glob) and exit 2, writing no output.
refused_by_all() { # FILE MSG
	local f=$1 msg=$2
	xrun envdump -l "$f"
	one_error "envdump: $msg"
	[ -z "$output" ]
	xrun envrev -s 9 -o out.env "$f"
	one_error "envrev: $msg"
	no_temps out.env absent
	xrun envrev -c good.env "$f"
	one_error "envrev: $msg"
	xrun envdiff -o out.envd "$f" good.env
	one_error "envdiff: $msg"
	no_temps out.envd absent
}

# envdump -l refuses FILE with "envdump: MSG" (the image checks are shared).
list_refused() { # FILE MSG
	xrun envdump -l "$1"
	one_error "envdump: $2"
	[ -z "$output" ]
}

# Run CMD (a string for bash) and check it exits 2 with a single stderr line
# matching the glob WANT, without bats' `run`: the loops below do it hundreds
# of times.
quick_error() { # WANT CMD
	local rc=0 e
	eval "$2" > out.txt 2> err.txt || rc=$?
	mapfile -t e < err.txt
	# shellcheck disable=SC2053
	if [ "$rc" -ne 2 ] || [ "${#e[@]}" -ne 1 ] || [[ "${e[0]}" != $1 ]]; then
		printf 'command: %s\nstatus %s, stderr:\n%s\nexpected:\n%s\n' \
			"$2" "$rc" "$(cat err.txt)" "$1" >&2
		return 1
	fi
}

# FILE's bytes as printf escapes (\xHH each), so that prefixes of it can be
# written with the printf builtin: printf %b "${esc:0:4*LEN}".
escaped() { # FILE
	xxd -p -c 1 "$1" | sed 's/^/\\x/' | tr -d '\n'
}

@test "image truncated at every byte of its header and directory" {
	printf 'ntp=10.0.0.1\n' > config
	envdump -r 41 config=config -o one.env
	esc=$(escaped one.env)
	(
		trap - DEBUG # bats' per-command trap would triple the time
		for ((len = 0; len < 112; len++)); do
			printf %b "${esc:0:4*len}" > t.env
			if ((len < 8)); then
				want="t.env: byte 0: truncated header ($len of 32 bytes)"
			elif ((len < 32)); then
				want="t.env: byte $len: truncated header ($len of 32 bytes)"
			else
				want="t.env: byte 12: item count 1 needs a 80-byte directory but only $((len - 32)) bytes follow the header"
			fi
			quick_error "envdump: $want" "envdump -l t.env"
			[ ! -s out.txt ]
		done
	)
}

@test "image truncated in its header and directory, from a pipe" {
	mkgood
	for len in 0 1 7 8 9 12 16 31 32 33 50 111 112 113 150 190 191; do
		if ((len < 8)); then
			want="(stdin): byte 0: truncated header ($len of 32 bytes)"
		elif ((len < 32)); then
			want="(stdin): byte $len: truncated header ($len of 32 bytes)"
		else
			want="(stdin): byte $len: truncated directory (entry $(((len - 32) / 80)) of 2)"
		fi
		quick_error "envdump: $want" "head -c $len good.env | envdump -l"
	done
}

@test "image truncated in its items, or with bytes after them" {
	mkgood
	for len in 192 193 700 1191 1192 1193 1220; do
		head -c "$len" good.env > t.env
		if ((len < 1192)); then
			want="t.env: byte $len: truncated: item 'settings' (directory entry 0) ends at byte 1192"
		else
			want="t.env: byte $len: truncated: item 'config' (directory entry 1) ends at byte 1221"
		fi
		refused_by_all t.env "$want"
	done
	cp good.env t.env
	printf 'x' >> t.env
	refused_by_all t.env "t.env: byte 1221: 1 byte after the last item's end"
	# from a pipe the size is not known in advance: the item read finds it
	xrun bash -c "head -c 1000 good.env | envdump -x settings -"
	one_error "envdump: (stdin): item 'settings': truncated at byte 808 of 1000"
}

@test "image with bad magic, version or reserved header fields" {
	mkgood
	poke bad.env 0 58
	xrun envdump -l bad.env
	one_error "envdump: bad.env: byte 0: bad magic (not an env image)"
	xrun envrev bad.env
	one_error "envrev: bad.env: byte 0: bad magic (not an env image)"
	cp good.env bad.env
	poke bad.env 8 0200
	refused_by_all bad.env "bad.env: byte 8: unsupported format version 2 (this is version 1)"
	cp good.env bad.env
	poke bad.env 10 01
	img_fix_crc bad.env
	list_refused bad.env "bad.env: byte 10: reserved header fields are not zero"
	cp good.env bad.env
	poke bad.env 24 01
	img_fix_crc bad.env
	list_refused bad.env "bad.env: byte 10: reserved header fields are not zero"
}

@test "image whose item count lies" {
	mkgood
	pokele bad.env 12 4 65537
	refused_by_all bad.env "bad.env: byte 12: item count 65537 exceeds the limit of 65536"
	pokele bad.env 12 4 4294967295
	refused_by_all bad.env "bad.env: byte 12: item count 4294967295 exceeds the limit of 65536"
	# at the limit, but far more than the file holds
	pokele bad.env 12 4 65536
	refused_by_all bad.env "bad.env: byte 12: item count 65536 needs a 5242880-byte directory but only 1189 bytes follow the header"
	# one too many, the CRC32 made to match: item bytes read as a directory entry
	cp good.env bad.env
	pokele bad.env 12 4 3
	img_fix_crc bad.env
	refused_by_all bad.env "bad.env: directory entry 2 (byte 192): reserved field is not zero"
	# one too few: the second entry and the last item's bytes are left over
	cp good.env bad.env
	pokele bad.env 12 4 1
	img_fix_crc bad.env
	refused_by_all bad.env "bad.env: byte 1112: 109 bytes after the last item's end"
}

@test "image whose item sizes lie" {
	mkgood
	pokele bad.env 40 8 1001
	img_fix_crc bad.env
	refused_by_all bad.env "bad.env: byte 1221: truncated: item 'config' (directory entry 1) ends at byte 1222"
	pokele bad.env 40 8 999
	img_fix_crc bad.env
	refused_by_all bad.env "bad.env: byte 1220: 1 byte after the last item's end"
	pokele bad.env 40 8 4611686018427387904
	img_fix_crc bad.env
	refused_by_all bad.env "bad.env: byte 1221: truncated: item 'settings' (directory entry 0) ends at byte 4611686018427388096"
	pokele bad.env 40 8 18446744073709551615
	img_fix_crc bad.env
	refused_by_all bad.env "bad.env: directory entry 0 (byte 32): item 'settings' size 18446744073709551615 is impossible"
	pokele bad.env 40 8 0
	pokele bad.env 120 8 1029
	img_fix_crc bad.env
	# the sum is right, but the CRC32s are not: that is found when reading
	xrun envdump -l bad.env
	[ "$status" -eq 0 ]
	xrun envdump -x config bad.env
	one_error "envdump: bad.env: item 'config': CRC32 mismatch (directory says $(crc32 -x < config), data has *)"
	[ -z "$output" ]
}

@test "image header CRC32 mismatch" {
	mkgood
	c=$(getle good.env 28 4)
	want=$(printf 'bad.env: byte 28: header CRC32 mismatch (stored %08x, computed *)' "$c")
	poke bad.env 16 2a
	refused_by_all bad.env "$want"
	# a directory field (item 1's CRC32)
	cp good.env bad.env
	flip bad.env $((112 + 4))
	refused_by_all bad.env "$want"
	# the last byte of the directory
	cp good.env bad.env
	flip bad.env 191 01
	refused_by_all bad.env "$want"
	# the stored CRC32 itself
	cp good.env bad.env
	flip bad.env 31 80
	refused_by_all bad.env "bad.env: byte 28: header CRC32 mismatch (stored *, computed $(printf %08x "$c"))"
}

@test "item data CRC32 mismatch: envdump -x, envdiff and envrev -c catch it" {
	mkgood
	flip bad.env $((192 + 999)) 04
	crcs="(directory says $(crc32 -x < settings), data has *)"
	want="bad.env: item 'settings': CRC32 mismatch $crcs"
	# the listing checks only the directory
	run envdump -l bad.env
	[ "$status" -eq 0 ]
	# nothing of a corrupt item is written, not even to stdout
	xrun envdump -x settings bad.env
	one_error "envdump: $want"
	[ -z "$output" ]
	xrun envdump -x settings -o out bad.env
	one_error "envdump: $want"
	no_temps out absent
	xrun bash -c 'cat bad.env | envdump -x settings -o out -'
	one_error "envdump: (stdin): item 'settings': CRC32 mismatch $crcs"
	no_temps out absent
	# the other item is fine
	envdump -x config bad.env | cmp - config
	envrev -s 42 good.env > g42.env
	xrun envdiff -o out.envd g42.env bad.env
	one_error "envdiff: $want"
	no_temps out.envd absent
	xrun envdiff -o out.envd bad.env g42.env
	one_error "envdiff: $want"
	no_temps out.envd absent
	xrun envdiff --stat bad.env g42.env
	one_error "envdiff: $want"
	xrun envdiff -R -o out.envd bad.env g42.env
	[ "$status" -eq 1 ]
	rm out.envd
	# same revision: envrev -c must read the bytes to answer
	xrun envrev -c good.env bad.env
	one_error "envrev: $want"
	xrun envrev -c bad.env good.env
	one_error "envrev: $want"
	xrun envrev -s 5 -o out.env bad.env
	one_error "envrev: $want"
	no_temps out.env absent
}

@test "a directory CRC32 field that lies (header CRC32 made to match)" {
	mkgood
	flip bad.env $((32 + 4)) 10
	img_fix_crc bad.env
	xrun envdump -x settings -o out bad.env
	one_error "envdump: bad.env: item 'settings': CRC32 mismatch (directory says *, data has $(crc32 -x < settings))"
	no_temps out absent
	envrev -s 42 good.env > g42.env
	xrun envdiff -o out.envd g42.env bad.env
	one_error "envdiff: bad.env: item 'settings': CRC32 mismatch*"
	no_temps out.envd absent
}

@test "image with duplicate item names" {
	printf 'a' > s
	envdump -r 1 aa=s ab=s zz=s -o bad.env
	envdump -r 2 aa=s -o good.env
	poke bad.env $((112 + 16)) 6161 # ab -> aa
	img_fix_crc bad.env
	refused_by_all bad.env "bad.env: directory entry 1 (byte 112): duplicate item name 'aa'"
	envdump -r 1 aa=s ab=s zz=s -o bad.env
	poke bad.env $((192 + 16)) 6161 # zz -> aa
	img_fix_crc bad.env
	refused_by_all bad.env "bad.env: directory entry 2 (byte 192): duplicate item name 'aa'"
}

@test "image item names: too long, empty, forbidden bytes, bad padding" {
	mkgood
	e0='bad.env: directory entry 0 (byte 32)'
	pokele bad.env 32 2 65
	img_fix_crc bad.env
	refused_by_all bad.env "$e0: item name longer than 64 bytes"
	pokele bad.env 32 2 65535
	img_fix_crc bad.env
	list_refused bad.env "$e0: item name longer than 64 bytes"
	pokele bad.env 32 2 0
	img_fix_crc bad.env
	list_refused bad.env "$e0: empty item name"
	# the length takes in a padding NUL
	pokele bad.env 32 2 9
	img_fix_crc bad.env
	list_refused bad.env "$e0: item name has a forbidden byte 0x00 at position 8"
	for byte in 20:0 3d:3 01:7 0a:2 7f:5 80:1 ff:4; do
		cp good.env bad.env
		poke bad.env $((48 + ${byte#*:})) "${byte%:*}"
		img_fix_crc bad.env
		list_refused bad.env "$e0: item name has a forbidden byte 0x${byte%:*} at position ${byte#*:}"
	done
	cp good.env bad.env
	poke bad.env $((48 + 20)) 41
	img_fix_crc bad.env
	list_refused bad.env "$e0: name padding is not zero"
	cp good.env bad.env
	poke bad.env $((112 + 2)) 01
	img_fix_crc bad.env
	list_refused bad.env "bad.env: directory entry 1 (byte 112): reserved field is not zero"
}

@test "image of 64-byte names with nothing after them is fine" {
	printf 'v' > s
	n64=$(printf 'n%.0s' {1..64})
	m64=$(printf 'm%.0s' {1..64})
	envdump -r 1 "$n64=s" "$m64=s" -o a.env
	run envdump -l a.env
	[ "$status" -eq 0 ]
	[ "${lines[2]}" = "$(crc32 -x < s)            1 $m64" ]
	envdump -x "$m64" a.env | cmp - s
}

@test "unreadable or missing inputs are named" {
	mkgood
	mkdir dir
	for f in dir nope; do
		case $f in
		dir) why="dir: is a directory" ;;
		nope) why="nope: cannot open: No such file or directory" ;;
		esac
		xrun envdump -l "$f"
		one_error "envdump: $why"
		xrun envdump -x settings -o out "$f"
		one_error "envdump: $why"
		no_temps out absent
		xrun envdump -o out.env "a=$f"
		one_error "envdump: $why"
		no_temps out.env absent
		xrun envdump --rev-from "$f" -o out.env a=config
		one_error "envdump: $why"
		no_temps out.env absent
		xrun envrev "$f"
		one_error "envrev: $why"
		xrun envrev --bump -o out.env "$f"
		one_error "envrev: $why"
		no_temps out.env absent
		xrun envrev -c "$f" good.env
		one_error "envrev: $why"
		xrun envdiff -o out.envd good.env "$f"
		one_error "envdiff: $why"
		no_temps out.envd absent
		xrun envdiff -t "$f"
		one_error "envdiff: $why"
	done
}

@test "envdump -x of an item the image does not have" {
	mkgood
	xrun envdump -x Settings -o out good.env
	one_error "envdump: good.env: no item named 'Settings'"
	no_temps out absent
	xrun bash -c 'cat good.env | envdump -x nope -'
	one_error "envdump: (stdin): no item named 'nope'"
	[ -z "$output" ]
}

# ---- diff streams ----
# d.envd: item "x" (64 bytes) with a Data, an Area of 9 and its Cont:
#   0 header (48)  48 item 'I' (96)  144 Data @2 (24)  168 Area @20 size 9 (24)
# 192 Cont +8 (24)  216 item end 'E' (48)  264 tail 'Z' (24); 288 bytes
mkstream() {
	zerofile x.a 64
	cp x.a x.b
	poke x.b 2 11
	poke x.b 20 010203040506070809
	envdump -r 1 x=x.a -o a.env
	envdump -r 2 x=x.b -o b.env
	envdiff -o d.envd a.env b.env || [ $? -eq 1 ]
	[ "$(stat -c %s d.envd)" -eq 288 ]
	cp d.envd bad.envd
}

# envdiff -t refuses the stream FILE with "envdiff: MSG".
stream_refused() { # FILE MSG
	xrun envdiff -t "$1"
	one_error "envdiff: $2"
}

@test "the stream used below is what it should be" {
	mkstream
	run envdiff -t d.envd
	[ "$status" -eq 1 ]
	[ "${lines[2]}" = "  Data    0x0000000000000002        1 11" ]
	[ "${lines[3]}" = "  Area    0x0000000000000014        9 0102030405060708" ]
	[ "${lines[4]}" = "  Cont    +8                        1 09" ]
	[ "$(xxd -s 216 -l 1 -p d.envd)" = 45 ]
	[ "$(xxd -s 264 -l 1 -p d.envd)" = 5a ]
}

@test "stream truncated at every byte" {
	mkstream
	esc=$(escaped d.envd)
	(
		trap - DEBUG
		for ((len = 0; len < 288; len++)); do
			printf %b "${esc:0:4*len}" > t.envd
			quick_error "envdiff: t.envd: byte $len: truncated stream (*)" "envdiff -t t.envd"
		done
	)
}

@test "stream truncated, from a pipe" {
	mkstream
	for len in 0 20 48 100 144 200 216 250 264 287; do
		xrun bash -c "head -c $len d.envd | envdiff --stat -"
		one_error "envdiff: (stdin): byte $len: truncated stream (*)"
	done
}

@test "stream with bad signature, version, header CRC32, flags or reserved bytes" {
	mkstream
	poke bad.envd 0 65
	stream_refused bad.envd "bad.envd: byte 0: bad signature (not an envsync diff stream)"
	stream_refused a.env "a.env: byte 0: bad signature (not an envsync diff stream)"
	cp d.envd bad.envd
	poke bad.envd 8 0200
	stream_refused bad.envd "bad.envd: byte 8: unsupported stream version 2 (this is version 1)"
	cp d.envd bad.envd
	poke bad.envd 16 07
	stream_refused bad.envd "bad.envd: byte 44: header CRC32 mismatch"
	cp d.envd bad.envd
	flip bad.envd 47 01
	stream_refused bad.envd "bad.envd: byte 44: header CRC32 mismatch"
	cp d.envd bad.envd
	pokele bad.envd 10 2 8
	st_fix_hdr bad.envd
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: byte 10: unknown flags or reserved fields not zero"
	cp d.envd bad.envd
	poke bad.envd 40 01
	st_fix_hdr bad.envd
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: byte 10: unknown flags or reserved fields not zero"
}

@test "stream whose item count lies" {
	mkstream
	pokele bad.envd 12 4 131073
	st_fix_hdr bad.envd
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: byte 12: item count 131073 exceeds the limit of 131072"
	pokele bad.envd 12 4 2
	st_fix_hdr bad.envd
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: byte 288: truncated stream (item: 24 of 96 bytes)"
	pokele bad.envd 12 4 0
	st_fix_hdr bad.envd
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: byte 48: expected the stream end record, found 0x49"
}

@test "stream CRC32 mismatch, wrong length, data after the end" {
	mkstream
	# an entry's data byte: every record is valid, only the CRC32 finds it
	flip bad.envd $((144 + 16)) 01
	c=$(getle d.envd 284 4)
	stream_refused bad.envd "$(printf 'bad.envd: byte 284: stream CRC32 mismatch (stored %08x, computed *)' "$c")"
	cp d.envd bad.envd
	flip bad.envd 287 01
	stream_refused bad.envd "bad.envd: byte 284: stream CRC32 mismatch (stored *, computed $(printf %08x "$c"))"
	cp d.envd bad.envd
	pokele bad.envd 272 8 289
	poke bad.envd 284 "$(head -c 284 bad.envd | crc32)"
	stream_refused bad.envd "bad.envd: byte 264: stream end record disagrees with the stream length 288"
	cp d.envd bad.envd
	poke bad.envd 264 59
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: byte 264: expected the stream end record, found 0x59"
	cp d.envd bad.envd
	printf '\0' >> bad.envd
	stream_refused bad.envd "bad.envd: byte 288: data after the end of the stream"
	cat d.envd d.envd > two.envd
	stream_refused two.envd "two.envd: byte 288: data after the end of the stream"
}

@test "stream entry past the item's end" {
	mkstream
	# Data @2 moved to @64, the item's size
	pokele bad.envd $((144 + 8)) 8 64
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 1 (byte 144): offset 64 + size 1 beyond the item"
	# the Area run grown past the end
	cp d.envd bad.envd
	pokele bad.envd $((168 + 4)) 4 45
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 2 (byte 168): offset 20 + size 45 beyond the item"
	cp d.envd bad.envd
	pokele bad.envd $((168 + 8)) 8 18446744073709551615
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 2 (byte 168): offset 18446744073709551615 + size 9 beyond the item"
	cp d.envd bad.envd
	pokele bad.envd $((168 + 4)) 4 4294967295
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 2 (byte 168): offset 20 + size 4294967295 beyond the item"
}

@test "stream entries that overlap or go backwards" {
	mkstream
	pokele bad.envd $((168 + 8)) 8 2
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 2 (byte 168): offset 2 overlaps or precedes the previous run (ends at 3)"
	pokele bad.envd $((168 + 8)) 8 1
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 2 (byte 168): offset 1 overlaps or precedes the previous run (ends at 3)"
}

@test "stream Cont without its Area, Area without its Conts, Cont out of sequence" {
	mkstream
	# the Data entry made a Cont
	poke bad.envd 144 03
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 1 (byte 144): Cont entry at relative offset 2 without its Area"
	# the Cont cut out: the item end comes while the run still misses a byte
	{ head -c 192 d.envd; tail -c +217 d.envd; } > bad.envd
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: item end 1 (byte 192): Area run at 20 ends early (1 bytes missing)"
	# the Cont made a Data entry: a new run starts inside the Area's
	cp d.envd bad.envd
	poke bad.envd 192 01
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 3 (byte 192): Area run at 20 ends early (1 bytes missing)"
	# a second Cont after the run is complete
	{ head -c 216 d.envd; tail -c +193 d.envd | head -c 24; tail -c +217 d.envd; } > bad.envd
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 4 (byte 216): Cont entry at relative offset 8 without its Area"
	cp d.envd bad.envd
	pokele bad.envd $((192 + 8)) 8 16
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 3 (byte 192): Cont entry out of sequence (relative offset 16, size 1)"
	cp d.envd bad.envd
	pokele bad.envd $((192 + 4)) 4 2
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 3 (byte 192): Cont entry out of sequence (relative offset 8, size 2)"
}

@test "stream entries with bad flags, sizes or unused bytes" {
	mkstream
	poke bad.envd 144 04
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 1 (byte 144): unknown flag 4"
	cp d.envd bad.envd
	poke bad.envd 145 01
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 1 (byte 144): unknown flag 1"
	cp d.envd bad.envd
	pokele bad.envd $((144 + 4)) 4 0
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 1 (byte 144): Data entry size 0 not in 1..8"
	pokele bad.envd $((144 + 4)) 4 9
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 1 (byte 144): Data entry size 9 not in 1..8"
	cp d.envd bad.envd
	pokele bad.envd $((168 + 4)) 4 8
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 2 (byte 168): Area entry size 8 not above 8"
	cp d.envd bad.envd
	poke bad.envd $((144 + 17)) 01
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 1 (byte 144): unused data bytes not zero (size 1)"
	cp d.envd bad.envd
	poke bad.envd $((192 + 23)) 01
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 3 (byte 192): unused data bytes not zero (size 1)"
	# an Invalid entry must carry nothing
	cp d.envd bad.envd
	poke bad.envd 144 00
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: entry 1 (byte 144): Invalid entry carries data (size 1, offset 2)"
}

@test "stream item end whose counts disagree with the entries" {
	mkstream
	want="bad.envd: item 'x' end (byte 216): counts"
	pokele bad.envd $((216 + 16)) 8 4
	st_fix_tail bad.envd
	stream_refused bad.envd "$want (4 entries, 2 spots, 10 bytes) disagree with the entries (3, 2, 10)"
	cp d.envd bad.envd
	pokele bad.envd $((216 + 24)) 8 1
	st_fix_tail bad.envd
	stream_refused bad.envd "$want (3 entries, 1 spots, 10 bytes) disagree with the entries (3, 2, 10)"
	cp d.envd bad.envd
	pokele bad.envd $((216 + 32)) 8 9
	st_fix_tail bad.envd
	stream_refused bad.envd "$want (3 entries, 2 spots, 9 bytes) disagree with the entries (3, 2, 10)"
	cp d.envd bad.envd
	poke bad.envd $((216 + 1)) 03
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: item end 1 (byte 216): bad decision 3 or reserved field not zero"
}

@test "stream item records: type, presence, sizes, names" {
	mkstream
	i1='bad.envd: item 1 (byte 48)'
	poke bad.envd 48 4a
	st_fix_tail bad.envd
	stream_refused bad.envd "bad.envd: byte 48: expected item 1 of 1, found record type 0x4a"
	for p in 00 04; do
		cp d.envd bad.envd
		poke bad.envd 49 "$p"
		st_fix_tail bad.envd
		stream_refused bad.envd "$i1: bad presence $((0x$p)) or reserved field not zero"
	done
	# present only in the result, yet with a base size
	cp d.envd bad.envd
	poke bad.envd 49 02
	pokele bad.envd 52 4 4294967295
	st_fix_tail bad.envd
	stream_refused bad.envd "$i1: 'x' is absent from the base but has a base size or index"
	cp d.envd bad.envd
	pokele bad.envd 50 2 65
	st_fix_tail bad.envd
	stream_refused bad.envd "$i1: item name longer than 64 bytes"
	for byte in 20 3d 01 7f; do
		cp d.envd bad.envd
		poke bad.envd 80 "$byte"
		st_fix_tail bad.envd
		stream_refused bad.envd "$i1: item name has a forbidden byte 0x$byte at position 0"
	done
	cp d.envd bad.envd
	pokele bad.envd $((48 + 16)) 8 18446744073709551615
	st_fix_tail bad.envd
	stream_refused bad.envd "$i1: 'x' has an impossible size"
}

@test "stream with duplicate item names" {
	printf 'abc' > p.a
	printf 'abd' > p.b
	envdump -r 1 x=p.a y=p.a -o a.env
	envdump -r 2 x=p.b y=p.b -o b.env
	envdiff -o two.envd a.env b.env || [ $? -eq 1 ]
	# item 2 starts after item 1's record, one entry and its end
	poke two.envd $((48 + 96 + 24 + 48 + 32)) 78 # y -> x
	st_fix_tail two.envd
	stream_refused two.envd "two.envd: item 2: duplicate item name 'x'"
}
