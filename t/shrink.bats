#!/usr/bin/env bats
# shrink.bats: an input cut short while a tool has it mapped (lib/view.c).
# The tools read regular files through mmap; a file truncated under the
# mapping raises SIGBUS on the next access past its new end. That must be
# one clear error and exit 2, not a crash, and nothing may be written from
# the zeros the handler maps in its place. t/shim/shrinkshim.c truncates the
# file right after the tool first maps it, so the cut comes at a known point.
load common
bats_require_minimum_version 1.5.0

setup_file() {
	export SHIM="$BATS_FILE_TMPDIR/shrinkshim.so"
	cc -shared -fPIC -O1 -o "$SHIM" "$ES_SRCDIR/t/shim/shrinkshim.c" -ldl
	# an ASan-built tool must accept a preloaded library ahead of its runtime
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}

setup() {
	cd "$BATS_TEST_TMPDIR" || exit 1
	# 20 MiB: five of the 4 MiB windows, so the cut is met both inside the
	# window mapped when it came and in windows mapped after it
	randfile old.raw $((20 << 20)) 5
	cp old.raw new.raw
	poke new.raw 100 ff
	poke new.raw $((19 << 20)) ff
}

# shrunk CMD...: run CMD with PATH cut to 3 MiB at its first mapping
shrunk() { # PATH CMD...
	local path=$1
	shift
	xrun env LD_PRELOAD="$SHIM" SHRINK_PATH="$path" SHRINK_TO=$((3 << 20)) "$@"
}

@test "envdiff: the result cut short while diffed: exit 2, one line, no output file" {
	shrunk new.raw envdiff -o d.envd old.raw new.raw
	one_error "envdiff: new.raw: the file was cut short while being read"
	[ "$(stat -c %s new.raw)" -eq $((3 << 20)) ]
	[ ! -e d.envd ]
	# the same pair, uncut, diffs
	cp old.raw new.raw
	poke new.raw 100 ff
	run envdiff -o d.envd old.raw new.raw
	[ "$status" -eq 1 ]
}

@test "envdiff: the base cut short: the base is named" {
	shrunk old.raw envdiff -o d.envd old.raw new.raw
	one_error "envdiff: old.raw: the file was cut short while being read"
	[ ! -e d.envd ]
}

@test "envapply: a target cut short while it is checked: exit 2, no state left" {
	envdiff old.raw new.raw | envjudge -r 1 > d.envd || true
	cp old.raw t.raw
	shrunk t.raw envapply t.raw d.envd
	one_error "envapply: t.raw: item *: the file was cut short while being read"
	cmp t.raw <(head -c $((3 << 20)) old.raw)
	[ -z "$(find . -name '.t.raw.envsync-*' ! -name '*-lock')" ]
}

@test "envapply: a prepared target cut short while its old bytes are journaled" {
	# with the target's verified state recorded, the first mapping of it is
	# the journal writer's, reading the old bytes under the spots: the spot
	# at 19 MiB is then past the cut
	envdiff old.raw new.raw | envjudge -r 1 > d.envd || true
	cp old.raw t.raw
	sleep 1.1 # a verified state is recorded once the file has been still 1 s
	envapply --check t.raw d.envd
	[ -e .t.raw.envsync-verified ]
	shrunk t.raw envapply t.raw d.envd
	one_error "envapply: t.raw: the file was cut short while being read"
	cmp t.raw <(head -c $((3 << 20)) old.raw)
	[ -z "$(find . -name '.t.raw.envsync-*' ! -name '*-lock' ! -name '*-verified')" ]
}

@test "envapply: a large target (two threads read it) cut short: one line, exit 2" {
	# from 64 MiB the check reads the two halves at once, each its own
	# mapping; the second half's thread stays quiet and the lone reread
	# reports
	randfile big.raw $((72 << 20)) 6
	cp big.raw bignew.raw
	poke bignew.raw 100 ff
	envdiff big.raw bignew.raw | envjudge -r 1 > d.envd || true
	cp big.raw t.raw
	shrunk t.raw envapply t.raw d.envd
	one_error "envapply: t.raw: item *: the file was cut short while being read"
	cmp t.raw <(head -c $((3 << 20)) big.raw)
}

@test "envdump: a source cut short while dumped: exit 2, no image" {
	shrunk new.raw envdump -r 1 a=new.raw -o img.env
	one_error "envdump: new.raw: item *: the file was cut short while being read"
	[ ! -e img.env ]
}
