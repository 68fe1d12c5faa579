#!/usr/bin/env bats
# limits.bats: hostile sizes and counts (up to 2^64-1) refused before any
# allocation, 1 GiB inputs in 64 MiB of address space, few file descriptors,
# and inputs that are not files: empty, a directory, a FIFO, a symlink loop.
load common

mkimage() {
	printf 'abc' > a
	envdump -r 5 a=a -o img.env
}

@test "an image claiming 2^32-1 items is refused before allocation" {
	mkimage
	poke img.env 12 ffffffff
	img_fix_crc img.env 2>/dev/null || true
	lim='ulimit -v 65536;'
	no_ulimit_v && lim=''
	run --separate-stderr bash -c "$lim envdump -l img.env"
	one_error "envdump: img.env: byte 12: item count 4294967295 exceeds the limit of 65536"
}

@test "an image item of 2^64-1 bytes is refused" {
	mkimage
	poke img.env 40 ffffffffffffffff
	img_fix_crc img.env
	run --separate-stderr envdump -l img.env
	one_error "envdump: img.env: *'a'*"
}

mkstream() {
	randfile b.raw 4096 1
	cp b.raw r.raw
	poke r.raw 100 0102030405060708090a0b
	envdiff b.raw r.raw > d.envd || [ $? = 1 ]
}

@test "a stream claiming 2^32-1 items is refused before allocation" {
	mkstream
	poke d.envd 12 ffffffff
	st_fix_hdr d.envd
	lim='ulimit -v 65536;'
	no_ulimit_v && lim=''
	run --separate-stderr bash -c "$lim envjudge d.envd"
	one_error "envjudge: d.envd: byte 12: item count 4294967295 exceeds the limit of 131072"
}

@test "a stream item of 2^64-1 bytes is refused" {
	mkstream
	poke d.envd $((48 + 24)) ffffffffffffffff
	st_fix_tail d.envd
	run --separate-stderr envjudge d.envd
	one_error "envjudge: d.envd: item 1 (byte 48): 'raw' has an impossible size"
}

@test "an entry at offset 2^64-1 is refused" {
	mkstream
	poke d.envd $((48 + 96 + 8)) ffffffffffffffff
	st_fix_tail d.envd
	run --separate-stderr envjudge d.envd
	one_error "envjudge: d.envd: entry 1 (byte 144): *beyond the item"
}

# A 1 GiB sparse raw pair (base.raw, new.raw: 7 bytes changed at 512 MiB)
# and a target (a copy of base.raw).
sparse_pair() {
	truncate -s 1G base.raw
	truncate -s 1G target.raw
	truncate -s 1G new.raw
	printf 'changed' | dd of=new.raw bs=1 seek=$((512 << 20)) conv=notrunc status=none
}

@test "a 1 GiB sparse raw pair in 64 MiB of address space: envdiff, envjudge, envapply" {
	no_ulimit_v && skip "ASan builds and valgrind cannot run under ulimit -v"
	sparse_pair
	run --separate-stderr bash -c 'ulimit -v 65536; envdiff base.raw new.raw > d.envd'
	[ "$status" -eq 1 ]
	run --separate-stderr bash -c 'ulimit -v 65536; envjudge d.envd > j.envd'
	[ "$status" -eq 0 ]
	run --separate-stderr bash -c 'ulimit -v 65536; envapply target.raw j.envd'
	[ "$status" -eq 0 ]
	cmp new.raw target.raw
}

@test "the same 1 GiB pair in under 16 MiB of resident memory (mapped inputs included)" {
	# inputs are read through 4 MiB mapped windows (lib/view.c), whose pages
	# count in the resident set: GNU time's peak RSS holds them to the aim
	no_ulimit_v && skip "ASan and valgrind add their own memory"
	sparse_pair
	rss() { /usr/bin/time -f %M -o rss.out "$@"; }
	rss envdiff base.raw new.raw > d.envd || [ $? -eq 1 ]
	echo "# envdiff: $(tail -n 1 rss.out) KiB" >&3
	[ "$(tail -n 1 rss.out)" -lt 16384 ]
	rss envapply target.raw d.envd
	echo "# envapply: $(tail -n 1 rss.out) KiB" >&3
	[ "$(tail -n 1 rss.out)" -lt 16384 ]
	cmp new.raw target.raw
}

@test "too few file descriptors: a clear error" {
	# valgrind keeps descriptors of its own above the limit and cannot start
	[ "${ES_TEST_SLOWDOWN:-1}" = 1 ] || skip "valgrind needs more than 4 descriptors"
	mkstream
	# stdin, stdout, stderr and one more: the second input cannot be opened
	run --separate-stderr bash -c 'exec 3>&- 4>&- 5>&-; ulimit -n 4; exec envdiff b.raw r.raw'
	one_error 'envdiff: r.raw: cannot open: Too many open files'
}

@test "0-byte inputs and target" {
	: > empty
	run --separate-stderr envdiff empty empty
	[ "$status" -eq 0 ]
	run --separate-stderr envdump -l empty
	one_error "envdump: empty: *"
	mkstream
	run --separate-stderr envapply empty d.envd
	one_error "envapply: empty: is neither at the diff's base nor at its result*" 4
	[ ! -s empty ]
}

@test "a directory: envdiff, envdump and envrev refuse it" {
	mkdir dir
	mkstream
	run --separate-stderr envdiff dir b.raw
	one_error "envdiff: dir: *directory*"
	run --separate-stderr envdump -l dir
	one_error "envdump: dir: *directory*"
	run --separate-stderr envrev dir
	one_error "envrev: dir: *directory*"
}

@test "a FIFO is read as a stream: not an env image, a clear error" {
	mkstream
	mkfifo fifo
	(cat b.raw > fifo &)
	run --separate-stderr timeout 10 envdiff fifo r.raw
	one_error 'envdiff: fifo: byte 0: bad magic (not an env image)'
}

@test "a symlink loop: a clear error" {
	ln -s loop loop
	mkstream
	run --separate-stderr envdiff loop b.raw
	one_error "envdiff: loop: cannot open: Too many levels of symbolic links"
	run --separate-stderr envapply loop d.envd
	one_error "envapply: loop: *symbolic links"
}

# Found by fuzz/apply.c: an item resized to 2^61 bytes had envapply build a
# sparse file of that size and read all of it to verify (a hang), not refuse.
@test "a result bigger than the file system is refused before it is built" {
	printf 'abc' > a
	envdump -r 5 a=a -o t.env
	printf 'abcd' > a
	envdump -r 6 a=a -o r.env
	envdiff t.env r.env > d.envd || [ $? = 1 ]
	cp t.env before.env
	poke d.envd $((48 + 24)) 0000000000000020
	st_fix_tail d.envd
	run --separate-stderr timeout 60 envapply t.env d.envd
	one_error "envapply: t.env: the result needs * bytes but its file system has * free"
	cmp t.env before.env
	no_temps t.env
	[ ! -e .t.env.envsync-new ]
}
