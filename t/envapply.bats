#!/usr/bin/env bats
# envapply.bats: envapply brings a target from a diff's base to its result,
# delta in place through a journal or full from SOURCE, verified; previews
# (-n), reruns, rollback, recovery and its state files.
load common
bats_require_minimum_version 1.5.0

setup_file() {
	sh "$ES_SRCDIR/samples/make-samples" "$BATS_FILE_TMPDIR/samples" >/dev/null
}

setup() {
	cd "$BATS_TEST_TMPDIR" || exit 1
	cp "$BATS_FILE_TMPDIR"/samples/* .
}

expect_text() { # NAME TEXT
	diff -u "$ES_SRCDIR/t/expected/$1" <(printf '%s\n' "$2")
}

# The state files envapply left beside TARGET (or in DIR), one per line:
# .NAME.envsync-*, or in a state directory .NAME.<8 hex digits>.envsync-*.
# A verified-state record (.envsync-verified) is left out: it is written only
# for a file unchanged for a second, so whether there is one depends on how
# fast the tool ran (under make check-valgrind it starts a second later).
state_files() { # TARGET [DIR]
	local dir=${2:-$(dirname "$1")} name
	name=$(basename "$1" | sed 's/[.[\*^$]/\\&/g')
	(cd "$dir" && { ls -A | grep -E "^\.$name(\.[0-9a-f]{8})?\.envsync-" |
		grep -v '\.envsync-verified$' || true; })
}

# No apply in flight or half built: no journal, no new file.
no_leftovers() { # TARGET [DIR]
	! state_files "$@" | grep -E 'envsync-(journal|new)'
}

# The decision words of the "end" lines of `envdiff -t` of the stream DIFF.
decisions() { # DIFF
	envdiff -t "$1" | sed -n 's/^end .*, //p' | tr '\n' ' '
}

# The whole failover sync from BASE to RESULT, on a copy of BASE, with the
# envjudge options given; then the copy must be RESULT, byte for byte, and a
# rollback must bring BASE back.
sync_check() { # BASE RESULT [envjudge options]
	local base=$1 result=$2
	shift 2
	cp "$base" tgt
	rm -f .tgt.envsync-*
	envdiff "$base" "$result" | envjudge "$@" | envapply -s "$result" tgt
	envrev -c tgt "$result"
	cmp tgt "$result"
	no_leftovers tgt
	envapply --rollback tgt
	cmp tgt "$base"
	no_leftovers tgt
}

# Images whose items grow, shrink, appear, disappear, stay empty, become
# empty and stop being empty: old.env (revision 5) -> new.env (revision 6).
make_items() {
	randfile g1 3000 3
	head -c 1000 g1 > g0
	randfile r 2000 4
	randfile ad 700 5
	: > e
	printf 'keep' > k
	printf 'xyz' > e2
	cp g1 c1
	poke c1 1500 00ff00ff00ff00ff00ff00ff
	envdump -r 5 keep=k grow=g0 shrink=g1 empty=e gone=r emptied=e2 changed=g1 -o old.env
	envdump -r 6 new=ad keep=k grow=g1 shrink=g0 empty=e emptied=e filled=e2 changed=c1 -o new.env
}

@test "the pipeline on the sample env images: the standby becomes the active" {
	cp standby.env old.env
	envdiff standby.env active.env | envjudge | envapply -s active.env standby.env
	envrev -c standby.env active.env
	cmp standby.env active.env
	no_leftovers standby.env
	run envrev standby.env
	[ "$output" = 42 ]
	# and the reverse direction
	envdiff standby.env old.env | envjudge | envapply -s old.env standby.env
	cmp standby.env old.env
}

@test "the pipeline on the sample raw files" {
	cp standby.fd old.fd
	envdiff standby.fd active.fd | envjudge | envapply -s active.fd standby.fd
	envrev -c standby.fd active.fd
	cmp standby.fd active.fd
	no_leftovers standby.fd
}

@test "sync with the default judgment: items grow, shrink, appear, disappear, empty" {
	make_items
	sync_check old.env new.env
	sync_check new.env old.env
}

@test "sync with every item forced full (-t 0)" {
	make_items
	envdiff old.env new.env | envjudge -t 0 > f.envd || true
	# every item with bytes to write goes full; "keep" and "empty" are the
	# same, and "shrink", "emptied" and "gone" need no write (only dropped)
	[ "$(decisions f.envd)" = "full delta full delta delta delta full full delta " ]
	sync_check old.env new.env -t 0
	sync_check new.env old.env -t 0
	sync_check standby.env active.env -t 0
	sync_check standby.fd active.fd -t 0
}

@test "sync with every item delta (huge -t, and -r 1 where nothing is removed or shrinks)" {
	make_items
	envdiff old.env new.env | envjudge -t 1000000000 > d.envd
	[ "$(decisions d.envd)" = "delta delta delta delta delta delta delta delta delta " ]
	sync_check old.env new.env -t 1000000000
	sync_check new.env old.env -t 1000000000
	sync_check standby.env active.env -r 1
	sync_check standby.fd active.fd -r 1
	envdiff standby.env active.env | envjudge -r 1 > r.envd
	[ "$(decisions r.envd)" = "delta delta delta " ]
	# grow and add only
	envdump -r 5 keep=k grow=g0 changed=g1 -o up.old
	envdump -r 6 keep=k grow=g1 changed=c1 new=ad -o up.new
	envdiff up.old up.new | envjudge -r 1 > u.envd
	[ "$(decisions u.envd)" = "delta delta delta delta " ]
	sync_check up.old up.new -r 1
}

@test "raw files that grow, shrink, empty and fill, delta and full" {
	randfile r1 5000 6
	head -c 3000 r1 > r0
	cp r1 r2
	poke r2 10 5151
	randfile tail 200 7
	cat tail >> r2
	: > empty
	for pair in "r0 r1" "r1 r0" "r1 r2" "r2 r0" "empty r1" "r1 empty"; do
		for opts in "-t 0" "-t 1000000"; do
			# shellcheck disable=SC2086
			sync_check $pair $opts || { echo "failed: $pair $opts"; return 1; }
		done
	done
}

# a: 4096 random bytes (SEED); b: a, a hole up to SIZE, one byte, a hole
# as long again: a reader must find the second hole after the data between
# them. Skips the test without fincore, which few_resident needs.
holey_pair() { # SEED SIZE
	command -v fincore >/dev/null || skip "no fincore (util-linux-extra)"
	randfile a 4096 "$1"
	cp a b
	truncate -s "$2" b
	printf 'x' >>b
	truncate -s $((2 * $2)) b
}

# Fewer than 64 of FILE's pages in the page cache: a mapped read of a hole
# puts a zero page there for each of its pages.
few_resident() { # FILE
	run fincore -b -n -o PAGES "$1"
	echo "$1: resident pages: $output"
	[ "$output" -lt 64 ]
}

@test "a raw target grown by a hole: exact, and the hole is not read to verify it" {
	# The result is the base, 256 MiB of hole (zeros no block holds) and one
	# byte. Its verification skips the hole (SEEK_DATA, and the CRC32 of
	# zeros by arithmetic): fuzz/apply found a small stream growing a target
	# by 16 GiB whose verification read them all, 113 s. A mapped read of a
	# hole puts zero pages in the page cache; fincore counts them.
	holey_pair 12 $((256 << 20))
	envdiff a b | envjudge -r 1 -o g.envd
	cp a t
	envapply t g.envd
	few_resident t
	cmp t b
}

@test "a full copy from a SOURCE with a hole: exact, and the hole is not read" {
	# The hole's zeros are copied from memory: mapping it made the page
	# cache fill a zero page for each (fincore counts them), most of a
	# calibration's 1 GiB full copy from its sparse source.
	holey_pair 13 $((64 << 20))
	envdiff a b | envjudge -t 0 -o f.envd
	# envdiff's read left b's hole in the page cache: a fresh sparse copy
	cp --sparse=always b src
	cp a t
	envapply -s src t f.envd
	cmp t b
	few_resident src
}

@test "an unjudged diff applies every item as a delta" {
	cp standby.env tgt
	envdiff standby.env active.env | envapply tgt
	cmp tgt active.env
}

@test "-n prints the plan and writes nothing (expected text)" {
	cp standby.env saved.env
	envdiff standby.env active.env | envjudge -o d.envd
	run --separate-stderr envapply -n standby.env d.envd
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	expect_text apply-dryrun-delta "$output"
	cmp standby.env saved.env
	[ -z "$(state_files standby.env)" ]

	envdiff standby.env active.env | envjudge -t 0 -o f.envd
	run --separate-stderr envapply --dry-run -s active.env standby.env f.envd
	[ "$status" -eq 0 ]
	expect_text apply-dryrun-full "$output"
	cmp standby.env saved.env
	[ -z "$(state_files standby.env)" ]

	# without -s, the plan says where full items would come from
	run --separate-stderr envapply -n standby.env f.envd
	[ "$status" -eq 0 ]
	diff -u <(sed 's/from active\.env$/from SOURCE/' "$ES_SRCDIR/t/expected/apply-dryrun-full") \
		<(printf '%s\n' "$output")
	cmp standby.env saved.env

	cp standby.fd saved.fd
	envdiff standby.fd active.fd | envjudge -o r.envd
	run --separate-stderr envapply -n standby.fd r.envd
	[ "$status" -eq 0 ]
	expect_text apply-dryrun-raw "$output"
	cmp standby.fd saved.fd
	[ -z "$(state_files standby.fd)" ]
}

@test "-v says what is done and that it is verified (expected text)" {
	envdiff standby.env active.env | envjudge -r 0.3 -o d.envd
	run --separate-stderr envapply -v -s active.env standby.env d.envd
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	expect_text apply-verbose "$stderr"
	cmp standby.env active.env
	# quiet without -v
	cp standby.fd t.fd
	envdiff standby.fd active.fd | envjudge -o r.envd
	run --separate-stderr envapply t.fd r.envd
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ -z "$stderr" ]
}

@test "the same sync twice: the second run finds the target at the result" {
	envdiff standby.env active.env | envjudge -t 0 -o d.envd
	envapply -s active.env standby.env d.envd
	cmp standby.env active.env
	cp .standby.env.envsync-last last.saved
	run --separate-stderr envapply -v -s active.env standby.env d.envd
	[ "$status" -eq 0 ]
	[ "$stderr" = "envapply: standby.env: already at the diff's result, nothing to do" ]
	cmp standby.env active.env
	# nothing was redone: the rollback data is the first run's
	cmp .standby.env.envsync-last last.saved
	# quiet without -v, and no SOURCE needed when there is nothing to do
	run --separate-stderr envapply standby.env d.envd
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	# the same for a raw file
	envdiff standby.fd active.fd | envjudge -o r.envd
	envapply standby.fd r.envd
	run envapply -v standby.fd r.envd
	[ "$status" -eq 0 ]
	[ "$output" = "envapply: standby.fd: already at the diff's result, nothing to do" ]
	cmp standby.fd active.fd
}

@test "a target at neither the base nor the result: exit 4, unchanged" {
	envdiff standby.env active.env | envjudge -o d.envd
	cp standby.env other.env
	envrev -s 7 -i other.env
	cp other.env saved.env
	run --separate-stderr envapply -s active.env other.env d.envd
	[ "$status" -eq 4 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ "$stderr" == "envapply: other.env: is neither at the diff's base nor at its result"*d.envd* ]]
	cmp other.env saved.env
	no_leftovers other.env
	# the same with -n
	run envapply -n other.env d.envd
	[ "$status" -eq 4 ]
	# a raw file with one byte changed
	envdiff standby.fd active.fd | envjudge -o r.envd
	cp standby.fd other.fd
	poke other.fd 777 00
	cp other.fd saved.fd
	run envapply other.fd r.envd
	[ "$status" -eq 4 ]
	[[ "$output" == "envapply: other.fd: is neither at the diff's base nor at its result"* ]]
	cmp other.fd saved.fd
	no_leftovers other.fd
}

@test "a large target (checked by two threads): a byte changed in either half is caught" {
	# From 64 MiB an item's CRC32 is read in two halves at once (lib/image.c,
	# where there are two CPUs); a stray byte in each half, near the cut and
	# at the ends, must still make the target neither base nor result.
	local size=$(((72 << 20) + 4097)) at
	randfile old $size 13
	cp old new
	poke new 5000 42
	envdiff old new | envjudge -r 1 -o d.envd
	for at in 0 $(((36 << 20) - 1)) $((36 << 20)) $((size - 1)); do
		cp old t
		xorpoke t "$at" 01
		run --separate-stderr envapply t d.envd
		[ "$status" -eq 4 ] || { echo "byte $at: exit $status"; return 1; }
		[[ "$stderr" == "envapply: t: is neither at the diff's base nor at its result"* ]]
	done
	cp old t
	envapply t d.envd
	cmp t new
}

@test "--rollback after a delta apply restores the old bytes; a second rollback redoes" {
	envdiff standby.fd active.fd | envjudge -o r.envd
	cp standby.fd t.fd
	envapply t.fd r.envd
	cmp t.fd active.fd
	run envapply -v --rollback t.fd
	[ "$status" -eq 0 ]
	[ "$output" = "envapply: t.fd: rolled back to before the last apply" ]
	cmp t.fd standby.fd
	envapply --rollback t.fd
	cmp t.fd active.fd
	envapply --rollback t.fd
	cmp t.fd standby.fd
	no_leftovers t.fd
	# an env image whose items keep their sizes: applied in place too
	randfile a 8192 8
	cp a b
	poke b 4000 0102030405
	printf 'x=1\n' > c1
	printf 'x=2\n' > c2
	envdump -r 1 a=a c=c1 -o old.env
	envdump -r 2 a=b c=c2 -o new.env
	cp old.env t.env
	envdiff old.env new.env | envjudge | envapply t.env
	cmp t.env new.env
	envapply --rollback t.env
	cmp t.env old.env
	envrev -c t.env old.env
	envapply --rollback t.env
	cmp t.env new.env
}

@test "--rollback after a full apply restores the old bytes" {
	# raw, full: a new file renamed into place
	envdiff standby.fd active.fd | envjudge -t 0 -o f.envd
	cp standby.fd t.fd
	envapply -s active.fd t.fd f.envd
	cmp t.fd active.fd
	envapply --rollback t.fd
	cmp t.fd standby.fd
	no_leftovers t.fd
	# an image with every item full, in place
	randfile a 8192 8
	cp a b
	poke b 4000 0102030405
	envdump -r 1 a=a -o old.env
	envdump -r 2 a=b -o new.env
	cp old.env t.env
	envdiff old.env new.env | envjudge -t 0 | envapply -s new.env t.env
	cmp t.env new.env
	envapply --rollback t.env
	cmp t.env old.env
	# an image whose layout changes (the samples: bootenv grows)
	cp standby.env t2.env
	envdiff standby.env active.env | envjudge -t 0 | envapply -s active.env t2.env
	cmp t2.env active.env
	envapply --rollback t2.env
	cmp t2.env standby.env
	no_leftovers t2.env
	# a second rollback redoes a rename apply too
	envapply --rollback t2.env
	cmp t2.env active.env
	envapply --rollback t.fd
	cmp t.fd active.fd
	envapply --rollback t.fd
	cmp t.fd standby.fd
	no_leftovers t.fd
}

@test "a committed journal left by an interrupted apply: -n refuses, --recover or the next apply finishes it" {
	envdiff standby.fd active.fd | envjudge -o r.envd
	cp standby.fd t.fd
	envapply t.fd r.envd
	# the apply's journal, put back as if the apply had stopped after committing it
	cp .t.fd.envsync-last journal.saved
	envapply --rollback t.fd
	cmp t.fd standby.fd
	cp journal.saved .t.fd.envsync-journal
	run --separate-stderr envapply -n t.fd r.envd
	[ "$status" -eq 2 ]
	[ "$stderr" = "envapply: t.fd: an interrupted apply is pending: run envapply --recover first" ]
	cmp t.fd standby.fd
	run envapply -v --recover t.fd
	[ "$status" -eq 0 ]
	[ "$output" = "envapply: t.fd: finished an interrupted apply" ]
	cmp t.fd active.fd
	no_leftovers t.fd
	# the next apply finishes it by itself, then finds nothing left to do
	envapply --rollback t.fd
	cp journal.saved .t.fd.envsync-journal
	run envapply t.fd r.envd
	[ "$status" -eq 0 ]
	cmp t.fd active.fd
	no_leftovers t.fd
}

@test "--rollback refuses when the target changed since the apply: exit 4" {
	envdiff standby.fd active.fd | envjudge -o r.envd
	cp standby.fd t.fd
	envapply t.fd r.envd
	poke t.fd 9 ee
	cp t.fd saved.fd
	run envapply --rollback t.fd
	[ "$status" -eq 4 ]
	[[ "$output" == "envapply: not at the last apply's result, refusing to roll back: t.fd: "* ]]
	cmp t.fd saved.fd
}

@test "--rollback with no previous apply exits 2" {
	cp standby.fd t.fd
	run envapply --rollback t.fd
	[ "$status" -eq 2 ]
	[[ "$output" == "envapply: t.fd: no previous apply to roll back"* ]]
	cmp t.fd standby.fd
	no_leftovers t.fd
}

@test "--recover with nothing to do exits 0 and changes nothing" {
	cp standby.fd t.fd
	run envapply -v --recover t.fd
	[ "$status" -eq 0 ]
	[ "$output" = "envapply: t.fd: no interrupted apply" ]
	cmp t.fd standby.fd
	# after a completed apply too
	envdiff standby.fd active.fd | envjudge | envapply t.fd
	run envapply --recover t.fd
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	cmp t.fd active.fd
}

@test "items judged full and no -s: exit 2 before any write" {
	envdiff standby.env active.env | envjudge -t 0 -o f.envd
	cp standby.env saved.env
	run --separate-stderr envapply standby.env f.envd
	[ "$status" -eq 2 ]
	[ "$stderr" = "envapply: f.envd: items are judged full but no SOURCE was given (-s)" ]
	cmp standby.env saved.env
	[ -z "$(state_files standby.env | grep -v envsync-lock)" ]
	envdiff standby.fd active.fd | envjudge -t 0 -o r.envd
	cp standby.fd saved.fd
	run envapply standby.fd r.envd
	[ "$status" -eq 2 ]
	cmp standby.fd saved.fd
	[ -z "$(state_files standby.fd | grep -v envsync-lock)" ]
}

@test "-s SOURCE not at the diff's result: exit 2, unchanged" {
	envdiff standby.env active.env | envjudge -t 0 -o f.envd
	cp standby.env saved.env
	# the wrong image: an item with another CRC32
	run --separate-stderr envapply -s standby.env standby.env f.envd
	[ "$status" -eq 2 ]
	[[ "$stderr" == "envapply: standby.env: item 'bios' does not match the diff's result (131072 bytes, CRC32 91ccf712)" ]]
	cmp standby.env saved.env
	no_leftovers standby.env
	# an image without the item
	printf 'x' > x
	envdump -r 42 other=x -o other.env
	run --separate-stderr envapply -s other.env standby.env f.envd
	[ "$status" -eq 2 ]
	[ "$stderr" = "envapply: other.env: has no item 'bios'" ]
	cmp standby.env saved.env
	# raw: the same size, one byte off
	envdiff standby.fd active.fd | envjudge -t 0 -o r.envd
	cp active.fd almost.fd
	poke almost.fd 0 00
	cp standby.fd saved.fd
	run --separate-stderr envapply -s almost.fd standby.fd r.envd
	[ "$status" -eq 2 ]
	[[ "$stderr" == "envapply: almost.fd: item 'raw' does not match the diff's result"* ]]
	cmp standby.fd saved.fd
	no_leftovers standby.fd
	run envapply -s nothere.fd standby.fd r.envd
	[ "$status" -eq 2 ]
	[[ "$output" == "envapply: nothere.fd: "* ]]
	cmp standby.fd saved.fd
}

@test "-J DIR keeps the journal, lock and rollback data in DIR" {
	mkdir state
	envdiff standby.fd active.fd | envjudge -o r.envd
	cp standby.fd t.fd
	envapply -J state t.fd r.envd
	cmp t.fd active.fd
	[ -z "$(state_files t.fd)" ]
	# keyed by the target's real path: .NAME.<CRC32 of the path>.envsync-*
	[ "$(state_files t.fd state | sed 's/\.[0-9a-f]\{8\}\./.X./' | sort | tr '\n' ' ')" = \
		".t.fd.X.envsync-last .t.fd.X.envsync-lock " ]
	# the rollback data is found only with the same -J
	run envapply --rollback t.fd
	[ "$status" -eq 2 ]
	cmp t.fd active.fd
	envapply -J state --rollback t.fd
	cmp t.fd standby.fd
	envapply -J state --recover t.fd
	[ -z "$(state_files t.fd | grep -v envsync-lock)" ]
	run envapply -J nodir t.fd r.envd
	[ "$status" -eq 2 ]
	[[ "$output" == "envapply: nodir/.t.fd."*".envsync-lock: "* ]]
	cmp t.fd standby.fd
}

@test "state files beside the target are hidden: .NAME.envsync-*" {
	mkdir d
	cp standby.fd d/t.fd
	envdiff standby.fd active.fd | envjudge | envapply d/t.fd
	[ "$(ls d)" = t.fd ]
	# (less a verified-state record, see state_files)
	[ "$(ls -A d | grep -v '\.envsync-verified$' | sort | tr '\n' ' ')" = ".t.fd.envsync-last .t.fd.envsync-lock t.fd " ]
	envdiff active.fd standby.fd | envjudge -t 0 | envapply -s standby.fd d/t.fd
	cmp d/t.fd standby.fd
	[ "$(ls d)" = t.fd ]
	[ -z "$(ls -A d | grep -v -e '^t\.fd$' -e '^\.t\.fd\.envsync-')" ]
	cp standby.env d/t.env
	envdiff standby.env active.env | envjudge | envapply d/t.env
	[ "$(ls d | tr '\n' ' ')" = "t.env t.fd " ]
	[ -z "$(ls -A d | grep -v -e '^t\.fd$' -e '^t\.env$' -e '^\.t\.fd\.envsync-' -e '^\.t\.env\.envsync-')" ]
}

@test "a full apply keeps the target's permissions" {
	cp standby.fd t.fd
	chmod 640 t.fd
	envdiff standby.fd active.fd | envjudge -t 0 | envapply -s active.fd t.fd
	cmp t.fd active.fd
	[ "$(stat -c %a t.fd)" = 640 ]
}

@test "usage errors and unusable targets exit 2" {
	envdiff standby.fd active.fd | envjudge -o r.envd
	cp standby.fd t.fd
	for args in "" "--rollback t.fd r.envd" "--recover t.fd r.envd" "--recover --rollback t.fd" \
		"--rollback -n t.fd" "--recover -s active.fd t.fd" "-w abc t.fd r.envd" "-w -1 t.fd r.envd" \
		"t.fd r.envd extra"; do
		# shellcheck disable=SC2086
		run envapply $args
		[ "$status" -eq 2 ] || { echo "'$args': $status"; return 1; }
	done
	cmp t.fd standby.fd
	run envapply missing.fd r.envd
	[ "$status" -eq 2 ]
	[[ "$output" == "envapply: missing.fd: "* ]]
	mkdir dir.fd
	run envapply dir.fd r.envd
	[ "$status" -eq 2 ]
	[[ "$output" == "envapply: dir.fd: "* ]]
	[ "${#lines[@]}" -eq 1 ]
	run envapply --version
	[ "$status" -eq 0 ]
	[[ "$output" == "envapply (envsync) "* ]]
	run envapply --help
	[[ "$output" == *"Exit status"* ]]
}

# Rewrite the CRC32 in a verified-state record and re-seal its line.
forge_record() { # RECORD HEX8
	local line sum
	line=$(sed -e 's/ sum=.*//' -e "s/ crc=[0-9a-f]*/ crc=$2/" "$1")
	sum=$(printf '%s' "$line" | "$ES_BUILDDIR/t/crc32")
	printf '%s sum=%s\n' "$line" "$sum" > "$1"
}

@test "--check records the verified state; an apply trusts it only while the file is unchanged" {
	envdiff standby.fd active.fd | envjudge -r 1 -o d.envd
	rec=.standby.fd.envsync-verified
	# a file changed less than a second ago gets no record (unless the run
	# itself took that second, as it can under make check-valgrind)
	touch standby.fd
	t0=$(date +%s%N)
	envapply --check standby.fd d.envd
	[ ! -e "$rec" ] || [ $(($(date +%s%N) - t0)) -ge 1000000000 ]
	rm -f "$rec"
	sleep 1.1
	run envapply --check -v standby.fd d.envd
	[ "$status" -eq 0 ]
	[[ "$output" == *"at the diff's base"* ]]
	grep -q "^envsync-verified 1 dev=[0-9]* ino=$(stat -c %i standby.fd) size=$(stat -c %s standby.fd) .* crc=$("$ES_BUILDDIR/t/crc32" < standby.fd) sum=[0-9a-f]*\$" "$rec"
	cmp standby.fd "$BATS_FILE_TMPDIR/samples/standby.fd"
	# The record stands in for reading the file: one that claims the
	# result's CRC32 makes envapply believe it is already there.
	cp "$rec" good
	forge_record "$rec" "$("$ES_BUILDDIR/t/crc32" < active.fd)"
	run envapply -v standby.fd d.envd
	[ "$status" -eq 0 ]
	[[ "$output" == *"already at the diff's result"* ]]
	cmp standby.fd "$BATS_FILE_TMPDIR/samples/standby.fd"
	# a damaged record (its sum no longer matches) is ignored
	sed -i 's/ sum=\(.\)/ sum=x/' "$rec"
	run envapply --check -v standby.fd d.envd
	[ "$status" -eq 0 ]
	[[ "$output" == *"at the diff's base"* ]]
	# a change of the file (here only its ctime) voids the record
	forge_record "$rec" "$("$ES_BUILDDIR/t/crc32" < active.fd)"
	chmod 644 standby.fd
	envapply standby.fd d.envd
	cmp standby.fd active.fd
}

@test "after --check, an apply reads back what it wrote and stays verified" {
	envdiff standby.env active.env | envjudge -r 1 -o d.envd
	touch -d '1 minute ago' standby.env
	sleep 1.1
	envapply --check standby.env d.envd
	[ -e .standby.env.envsync-verified ]
	envapply standby.env d.envd
	cmp standby.env active.env
	envrev -c standby.env active.env
	# the record is for the old file: the next check reads it whole
	run envapply --check -v standby.env d.envd
	[ "$status" -eq 0 ]
	[[ "$output" == *"already at the diff's result"* ]]
}

@test "spots a few bytes apart share a journal record: apply, rollback and recover stay exact" {
	randfile old 65536 21
	cp old new
	# gaps of 1, 2, 100, 511, 512, 513 and 4000 bytes between changed bytes,
	# and a run across a 64 KiB record's worth of merged spots
	off=10
	for gap in 1 2 100 511 512 513 4000; do
		xorpoke new "$off" 5a
		off=$((off + gap + 1))
	done
	for ((off = 20000; off < 60000; off += 37)); do
		xorpoke new "$off" 01
	done
	envdiff old new | envjudge -r 1 -o d.envd
	cp old t
	envapply t d.envd
	cmp t new
	envapply --rollback t
	cmp t old
	envapply --rollback t
	cmp t new
}

@test "a dense item going full: envapply -c spools none of its entries once settled, a judged one gives them back" {
	# the source holds the bytes: a full item's entries (12 MB of stream
	# here) were written to the spool, read back and skipped, most of a
	# dense full copy's time. Counted by the shim: a 64 KiB spool write
	# each, so a spool of the entries is at least 192 writes
	[ "${ES_TEST_SLOWDOWN:-1}" = 1 ] || skip "the shim needs the tool run natively"
	cc -shared -fPIC -O1 -o shim.so "$ES_SRCDIR/t/shim/crashshim.c" -ldl
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
	randfile old 4194304 5
	randfile new 4194304 6
	envdiff old new > d || [ $? -eq 1 ]
	[ "$(stat -c %s d)" -gt 12000000 ]
	# any change to the big item goes full: a delta's bytes cost 1 ms
	# each, a full copy 10 ms and 1 ns a byte
	printf '%s\n' 'envsync-calibration 1' 'block_size 4096' 'item_size 4194304' \
		'delta_fixed_ns 0' 'delta_per_spot_ns 0' 'delta_per_byte_ns 1000000' \
		'delta_per_block_ns 0' 'full_fixed_ns 10000000' 'full_per_byte_ns 1' > cal.txt
	cp old t
	CRASH_COUNT=count LD_PRELOAD=$PWD/shim.so envapply -c cal.txt -s new t d
	cmp t new
	echo "calls: $(cat count)"
	[ "$(cat count)" -lt 64 ]
	# a stream judged beforehand says so only at the item's end: its
	# entries are spooled, then taken back; the result is the same
	envjudge -t 0 -o judged d
	cp old t2
	envapply -s new t2 judged
	cmp t2 new
	# and a delta beside it keeps its entries: a two-item image, one item
	# dense (full), one changed in a byte (delta)
	randfile s1 4096 7
	cp s1 s2
	poke s2 100 ff
	envdump -r 1 big=old small=s1 -o a.env
	envdump -r 2 big=new small=s2 -o b.env
	envdiff a.env b.env > di || [ $? -eq 1 ]
	cp a.env t3
	envjudge -v -c cal.txt di 2>&1 >/dev/null | tee judged.txt
	grep -q '^big: .*-> full$' judged.txt
	grep -q '^small: .*-> delta$' judged.txt
	envapply -c cal.txt -s b.env t3 di
	cmp t3 b.env
}
