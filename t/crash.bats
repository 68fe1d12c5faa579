#!/usr/bin/env bats
# crash.bats: a SIGKILL at any instant of an apply leaves the target fully old
# or fully new once recovered. The real envapply runs under t/shim/crashshim.c,
# killed before its N-th write, fsync, rename, truncate, link or unlink, for
# every N from 1 to the last; then `envapply --recover` runs and the target
# must be byte-identical to the old or the new image.
load common

setup_file() {
	export SHIM="$BATS_FILE_TMPDIR/crashshim.so"
	cc -shared -fPIC -O1 -o "$SHIM" "$ES_SRCDIR/t/shim/crashshim.c" -ldl
	# an ASan-built envapply must accept a preloaded library ahead of its runtime
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}

# crash_every OLD NEW DIFF [envapply options]: the kill loop; prints a tally.
crash_every() {
	local old=$1 new=$2 diff=$3
	shift 3
	cp "$old" target
	rm -f .target.envsync-* count
	CRASH_COUNT=count LD_PRELOAD="$SHIM" envapply "$@" target "$diff"
	cmp target "$new"
	local total
	total=$(cat count)
	[ "$total" -gt 3 ]
	n_old=0 n_new=0
	for ((i = 1; i <= total; i++)); do
		cp "$old" target
		rm -f .target.envsync-*
		run env CRASH_AT=$i LD_PRELOAD="$SHIM" envapply "$@" target "$diff"
		[ "$status" -eq 137 ] || { echo "call $i: status $status, not killed"; return 1; }
		envapply --recover target
		if cmp -s target "$old"; then
			n_old=$((n_old + 1))
		elif cmp -s target "$new"; then
			n_new=$((n_new + 1))
		else
			echo "call $i of $total: target is neither old nor new"
			return 1
		fi
		# and the sync, run again, always ends at the new image
		envapply "$@" target "$diff"
		cmp target "$new"
		[ ! -e .target.envsync-journal ] && [ ! -e .target.envsync-new ]
	done
	echo "killed at each of $total calls: $n_old old, $n_new new after recovery" >&3
	# both outcomes must occur: before the journal is in place, and after
	[ "$n_old" -gt 0 ] && [ "$n_new" -gt 0 ]
}

make_images() {
	randfile s.bios 65536 7
	cp s.bios a.bios
	poke a.bios 0 ff
	poke a.bios 4000 00112233445566778899aabbccddeeff00
	poke a.bios 65535 01
	printf 'a=1\n' > s.cfg
	printf 'a=2\n' > a.cfg
	envdump -r 1 bios=s.bios cfg=s.cfg -o old.env
	envdump -r 2 bios=a.bios cfg=a.cfg -o new.env
}

@test "image, delta in place through the journal" {
	make_images
	envdiff old.env new.env | envjudge -r 1 > d.envd || true
	crash_every old.env new.env d.envd
}

@test "image, one item full, in place through the journal" {
	make_images
	envdiff old.env new.env | envjudge -t 3 > d.envd || true
	envdiff -t d.envd | grep -q 'full$'
	crash_every old.env new.env d.envd -s new.env
}

@test "image whose layout changes: built beside and renamed" {
	make_images
	printf 'new item\n' > extra
	envdump -r 2 bios=a.bios extra=extra -o grown.env
	envdiff old.env grown.env > d.envd || true
	crash_every old.env grown.env d.envd
}

@test "raw file, delta in place, growing" {
	randfile old.fd 100000 3
	cp old.fd new.fd
	poke new.fd 5 abcdef
	printf 'tail' >> new.fd
	envdiff old.fd new.fd | envjudge -r 1 > d.envd || true
	crash_every old.fd new.fd d.envd
}

@test "raw file, full copy: temp, fsync, rename" {
	randfile old.fd 100000 3
	randfile new.fd 90000 4
	envdiff old.fd new.fd | envjudge -t 0 > d.envd || true
	crash_every old.fd new.fd d.envd -s new.fd
}

@test "rollback, killed at every call, leaves new or old" {
	make_images
	envdiff old.env new.env > d.envd || true
	cp old.env target
	rm -f .target.envsync-*
	envapply target d.envd
	cp .target.envsync-last saved-last
	CRASH_COUNT=count LD_PRELOAD="$SHIM" envapply --rollback target
	cmp target old.env
	total=$(cat count)
	for ((i = 1; i <= total; i++)); do
		cp new.env target
		rm -f .target.envsync-*
		cp saved-last .target.envsync-last
		run env CRASH_AT=$i LD_PRELOAD="$SHIM" envapply --rollback target
		[ "$status" -eq 137 ]
		envapply --recover target
		cmp -s target new.env || cmp -s target old.env
	done
}
