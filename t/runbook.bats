#!/usr/bin/env bats
# runbook.bats: the runbook in envsync(7) works as printed, so the page cannot
# rot. In the page's source every example block (.EX ... .EE) follows a
# marker comment:
#   .\" runbook NAME         the block's commands belong to workflow NAME
#   .\" runbook-skip REASON  not run here (a running cluster, systemd): REASON
# A test takes a workflow's blocks in page order, undoes the roff escapes,
# moves the page's absolute paths (/srv, /var/lib/envsync, /etc) under a
# scratch root, runs them with bash on data made by samples/make-samples, and
# then checks the outcome on the files themselves (bytes, revisions,
# journal), not the commands' own say-so.
load common

PAGE=$ES_SRCDIR/man/envsync.7

# Every workflow the page must have and this file runs; a "runbook NAME"
# block whose NAME is not here fails the marking test, so no block goes unrun.
WORKFLOWS="setup-active setup-standby calibrate prestage prestage-systemd failover pipeline inspect dry-run apply recover rollback diverged pacemaker"

# The blocks of workflow NAME, in page order, as a user would type them.
page_blocks() { # NAME
	awk -v want="$1" '
		/^\.\\" runbook / { mark = $3; next }
		/^\.\\" runbook-skip / { mark = ""; next }
		/^\.EX/ { inblk = 1; take = (mark == want); mark = ""; next }
		/^\.EE/ { inblk = 0; next }
		inblk && take && !/^[.'"'"']/ { print }
	' "$PAGE" | sed -e 's/\\-/-/g' -e 's/\\e/\\/g' -e "s/\\\\(aq/'/g" -e 's/\\(dq/"/g' -e 's/\\&//g'
}

# The page's absolute paths in FILE that the test does not move under $ROOT:
# a block that would touch the real system outside these must not run.
foreign_paths() { # FILE
	grep -oE "(^|[[:space:]='\"])/[A-Za-z][^[:space:]'\"]*" "$1" | sed -E "s/^[[:space:]='\"]//" |
		grep -vE '^/(srv/|var/lib/envsync(/|$)|etc/cron\.d/|etc/systemd/system/|dev/null$)' || true
}

# Twice: a match takes the blank after it, so of two paths separated by one
# blank ("-J /var/lib/envsync /srv/...") one pass moves only the first.
relocate() { # < SCRIPT > SCRIPT
	local e="s#(^|[[:space:]='\"])/(srv|var/lib/envsync|etc)(/|[[:space:]'\"]|\$)#\\1$ROOT/\\2\\3#g"
	sed -E -e "$e" -e "$e"
}

# Run workflow NAME's blocks as one bash script from $HOME_DIR. Exit status 1
# of an envsync tool means "different" or "some item goes full" (envsync(7),
# Exit status), which a runbook step may show, also from the first command of a
# pipeline whose last succeeded (envdiff -t | less); anything else that fails
# (status 2 and above, or any failure of another command) stops the script and
# fails the test. Output (stdout and stderr) in $output and NAME.out.
runbook() { # NAME
	local name=$1 f=$BATS_TEST_TMPDIR/$1
	page_blocks "$name" > "$f.page"
	[ -s "$f.page" ] || { echo "envsync(7) has no 'runbook $name' block" >&2; return 1; }
	local bad
	bad=$(foreign_paths "$f.page")
	[ -z "$bad" ] || { echo "runbook $name uses paths the test does not relocate: $bad" >&2; return 1; }
	{
		cat <<'EOF'
set -E -o pipefail
es_err() { # STATUS COMMAND PIPESTATUS
	if [ "$1" -eq 1 ]; then
		case $2 in env[a-z]*\ *) return 0 ;; esac
		case " $3" in *" 0") [ -z "$(tr -d ' 01' <<<"$3")" ] && return 0 ;; esac
	fi
	echo "runbook step failed with exit status $1 ($3): $2" >&2
	exit "$1"
}
trap 'es_err $? "$BASH_COMMAND" "${PIPESTATUS[*]}"' ERR
EOF
		relocate < "$f.page"
		# a last step's "different" (exit 1) is not the script's failure
		echo "exit 0"
	} > "$f.sh"
	run bash -c 'cd "$1" && exec bash "$2"' runbook "$HOME_DIR" "$f.sh"
	printf '%s\n' "$output" > "$f.out"
	if [ "$status" -ne 0 ]; then
		echo "runbook $name: exit status $status; script $f.sh; output:" >&2
		printf '%s\n' "$output" >&2
		return 1
	fi
}

setup_file() {
	sh "$ES_SRCDIR/samples/make-samples" "$BATS_FILE_TMPDIR/samples" >/dev/null
}

# A fresh pair: the active's three sources (the items of the sample active
# image) and the standby's target (the sample standby image, never synced:
# revision 0), under $ROOT; $HOME_DIR is where commands start, with the source
# tree's contrib/ in reach as in an unpacked tarball.
setup() {
	cd "$BATS_TEST_TMPDIR" || exit 1
	ROOT=$BATS_TEST_TMPDIR/root
	HOME_DIR=$BATS_TEST_TMPDIR/home
	VLE=$ROOT/var/lib/envsync
	IMG=$ROOT/srv/active/env.img
	local s=$BATS_FILE_TMPDIR/samples i
	mkdir -p "$ROOT/srv/env" "$VLE" "$ROOT/etc/cron.d" "$ROOT/etc/systemd/system" "$HOME_DIR" fakebin
	ln -s "$ES_SRCDIR/contrib" "$HOME_DIR/contrib"
	for i in bios config bootenv; do
		envdump -x "$i" "$s/active.env" > "$ROOT/srv/env/$i.tmp"
	done
	mv "$ROOT/srv/env/bios.tmp" "$ROOT/srv/env/bios.fd"
	mv "$ROOT/srv/env/config.tmp" "$ROOT/srv/env/config"
	mv "$ROOT/srv/env/bootenv.tmp" "$ROOT/srv/env/bootenv"
	envrev -s 0 -o "$VLE/standby.env" "$s/standby.env"
	# logger stand-in: envsync-prestage's log lines land in $LOG
	LOG=$BATS_TEST_TMPDIR/log
	printf '#!/bin/sh\nprintf "%%s\\n" "$*" >> "%s"\n' "$LOG" > fakebin/logger
	chmod +x fakebin/logger
	# the page pages a listing through less; a minimal system may lack it, and
	# with its output not a terminal less only copies, as cat does
	command -v less >/dev/null || ln -s "$(command -v cat)" fakebin/less
	PATH=$BATS_TEST_TMPDIR/fakebin:$ES_SRCDIR/contrib:$PATH
	export PATH
}

# The pair set up, calibrated and pre-staged, by the page's own blocks. The
# calibration (seconds of writes) is made once by the page's block and reused:
# the target has the same size in every test.
staged() {
	runbook setup-active
	runbook setup-standby
	calibrated
	runbook prestage
}
calibrated() {
	if [ -s "$BATS_FILE_TMPDIR/medium.cal" ]; then
		cp "$BATS_FILE_TMPDIR/medium.cal" "$VLE/medium.cal"
	else
		runbook calibrate
		cp "$VLE/medium.cal" "$BATS_FILE_TMPDIR/medium.cal"
	fi
}

# Files of the state directory (the journal, lock and rollback data too).
state_files() { ls -A "$VLE" | sort; }

@test "every example block of envsync(7) is run here or skipped with a reason" {
	# each .EX follows a marker line (allowing an .in request between)
	run awk '
		/^\.\\" runbook [a-z0-9-]+$/ || /^\.\\" runbook-skip [^ ].*/ { marked = 1; next }
		/^\.in/ { next }
		/^\.EX/ { n++; if (!marked) { printf "line %d: .EX block without a runbook marker\n", NR; bad = 1 } }
		{ marked = 0 }
		END { if (n < 10) { print "only " n " .EX blocks"; bad = 1 }; exit bad }' "$PAGE"
	[ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
	# every workflow named in the page is one this file runs, and the other way round
	named=$(sed -n 's/^\.\\" runbook \([a-z0-9-]*\)$/\1/p' "$PAGE" | sort -u)
	want=$(tr ' ' '\n' <<<"$WORKFLOWS" | sort -u)
	diff -u <(echo "$want") <(echo "$named")
	# commands are not hidden in plain displays (.nf), which only hold listings
	run awk '/^\.nf/ { on = 1; next } /^\.fi/ { on = 0 } on' "$PAGE"
	run ! grep -nE '^(env[a-z]+|envsync\\-prestage|cibadmin|crm_[a-z]+|pcs|systemctl|cp|mkdir|cd) ' <<<"$output"
	# the skipped blocks, shown in the test's output with their reasons
	skips=$(sed -n 's/^\.\\" runbook-skip /  not run: /p' "$PAGE")
	echo "$skips" >&3
	[ "$(wc -l <<<"$skips")" -le 4 ]
}

@test "set up a pair: the capture keeps its revision until a source changes" {
	runbook setup-active
	[ "$(envrev "$IMG")" = 1 ]
	for i in bios.fd:bios config:config bootenv:bootenv; do
		cmp "$ROOT/srv/env/${i%%:*}" <(envdump -x "${i#*:}" "$IMG")
	done
	# run again, nothing changed: same revision, same bytes
	cp "$IMG" img.1
	runbook setup-active
	cmp "$IMG" img.1
	# a source changes: the next capture has the next revision
	printf 'hostname=node-b\nntp=10.0.0.3\nmode=standby\n' > "$ROOT/srv/env/config"
	runbook setup-active
	[ "$(envrev "$IMG")" = 2 ]
	cmp "$ROOT/srv/env/config" <(envdump -x config "$IMG")
	runbook setup-standby
	[ -d "$VLE/staging" ]
	[ "$output" = "$(printf '0\n2')" ]
}

@test "calibrate: a valid calibration, no scratch files left" {
	runbook setup-active
	runbook setup-standby
	cp "$VLE/standby.env" before
	runbook calibrate
	[ -s "$VLE/medium.cal" ]
	cp "$VLE/medium.cal" "$BATS_FILE_TMPDIR/medium.cal" # for the other tests
	cmp "$VLE/standby.env" before
	[ "$(state_files | tr '\n' ' ')" = "medium.cal staging standby.env " ]
	# the calibration judges a real diff (exit 0 all delta, 1 some full)
	envdiff -o d.envd before "$IMG" || [ $? -eq 1 ]
	run envjudge -q -c "$VLE/medium.cal" d.envd
	[ "$status" -le 1 ]
}

@test "pre-stage: staged image and diff lead the target to the active's; cron's line runs and does nothing more" {
	runbook setup-active
	runbook setup-standby
	calibrated
	cp "$VLE/standby.env" before
	runbook prestage
	cmp "$VLE/staging/staged.env" "$IMG"
	cmp "$VLE/standby.env" before
	# the diff, applied to a copy of the target, gives the active's image
	cp before check.env
	envjudge "$VLE/staging/staged.envd" | envapply -J . -s "$VLE/staging/staged.env" check.env
	cmp check.env "$IMG"
	grep -q 'staged revision 1 (was none)' "$LOG"
	# the cron example was installed; its command, run now, stages nothing new
	cmp "$ROOT/etc/cron.d/envsync-prestage" "$ES_SRCDIR/contrib/envsync-prestage.cron"
	line=$(grep -E '^[*0-9]' "$ROOT/etc/cron.d/envsync-prestage")
	# the page shows that same line (folded there)
	page_line=$(awk '/^\.nf/ { on = 1; buf = ""; next }
		/^\.fi/ { if (buf ~ /^\*\/5 /) print buf; on = 0 }
		on { sub(/^ +/, ""); sub(/ *\\e$/, ""); buf = buf (buf == "" ? "" : " ") $0 }' "$PAGE" | sed 's/\\-/-/g')
	[ "$page_line" = "$line" ] || { printf 'page:  %s\nfile:  %s\n' "$page_line" "$line" >&2; return 1; }
	stamp=$(stat -c '%i %Y' "$VLE/staging/staged.env" "$VLE/staging/staged.envd")
	cmd=$(cut -d' ' -f7- <<<"$line" | relocate)
	sleep 1
	: > "$LOG"
	bash -c "$cmd"
	[ "$(stat -c '%i %Y' "$VLE/staging/staged.env" "$VLE/staging/staged.envd")" = "$stamp" ]
	[ "$(wc -l < "$LOG")" -eq 1 ]
	grep -q 'revision 1 unchanged' "$LOG" || { cat "$LOG" >&2; return 1; }
	# the systemd units land where systemd looks for them
	runbook prestage-systemd
	cmp "$ROOT/etc/systemd/system/envsync-prestage.service" "$ES_SRCDIR/contrib/envsync-prestage.service"
	cmp "$ROOT/etc/systemd/system/envsync-prestage.timer" "$ES_SRCDIR/contrib/envsync-prestage.timer"
}

@test "failover by hand: the target ends byte-identical to the staged image; again, nothing to do" {
	staged
	runbook failover
	cmp "$VLE/standby.env" "$VLE/staging/staged.env"
	cmp "$VLE/standby.env" "$IMG"
	envrev -c "$VLE/standby.env" "$IMG"
	[ "${lines[-1]}" = "in sync" ]
	cp "$VLE/standby.env" synced
	runbook failover
	cmp "$VLE/standby.env" synced
	[ "${lines[-1]}" = "in sync" ]
}

@test "failover in one pipeline, without pre-staging" {
	runbook setup-active
	runbook setup-standby
	calibrated
	runbook pipeline
	cmp "$VLE/standby.env" "$IMG"
}

@test "inspect a staged diff: every changed item is named, entries listed, decisions given" {
	staged
	runbook inspect
	n=0
	for i in bios config bootenv; do
		# changed or not, decided by comparing the item's bytes directly
		if cmp -s <(envdump -x "$i" "$VLE/standby.env") <(envdump -x "$i" "$IMG"); then
			! grep -qE "^$i +(changed|resized)" "$BATS_TEST_TMPDIR/inspect.out"
		else
			n=$((n + 1))
			grep -qE "^$i +(changed|resized) " "$BATS_TEST_TMPDIR/inspect.out"
			grep -qE "^$i: .* -> (delta|full)\$" "$BATS_TEST_TMPDIR/inspect.out"
		fi
	done
	[ "$n" -gt 0 ]
	grep -qE "^$n of 3 items changed" "$BATS_TEST_TMPDIR/inspect.out"
	grep -qE '^ *(Data|Area) ' "$BATS_TEST_TMPDIR/inspect.out"
}

@test "dry run: says what would change and leaves the target and the state directory alone" {
	staged
	cp -p "$VLE/standby.env" before
	files=$(state_files)
	touch -d '2001-01-01' "$VLE/standby.env"
	runbook dry-run
	cmp "$VLE/standby.env" before
	[ "$(stat -c %Y "$VLE/standby.env")" = "$(date -d 2001-01-01 +%s)" ]
	[ "$(state_files)" = "$files" ]
	[[ $output == *"revision 0 -> 1"* ]]
}

@test "apply by hand: envrev -c exits 0 and the target is the staged image" {
	staged
	runbook apply
	envrev -c "$VLE/standby.env" "$VLE/staging/staged.env"
	cmp "$VLE/standby.env" "$IMG"
	[ "${lines[-1]}" = "in sync" ]
	# the rollback data is in the state directory the agent uses (-J)
	ls "$VLE"/.standby.env.*.envsync-last
}

@test "recover after an interrupted apply: killed at every write, recovered, then applied" {
	# items that keep their sizes are patched in place through the journal, so
	# a kill can leave the target half written: the active's boot environment
	# is the standby's with one byte changed (the sample's grows)
	envdump -x bootenv "$VLE/standby.env" | sed 's/bootdelay=2/bootdelay=5/' > "$ROOT/srv/env/bootenv"
	staged
	cc -shared -fPIC -O1 -o shim.so "$ES_SRCDIR/t/shim/crashshim.c" -ldl
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
	cp "$VLE/standby.env" old
	# judged delta (-r 1), whatever the calibration says of so small an
	# image: in place, a kill can tear the target, which recovery must mend
	envjudge -r 1 -o judged "$VLE/staging/staged.envd"
	# how many file-changing calls a whole apply makes
	CRASH_COUNT=count LD_PRELOAD=$PWD/shim.so envapply -J "$VLE" -s "$VLE/staging/staged.env" "$VLE/standby.env" judged
	total=$(cat count)
	[ "$total" -gt 3 ]
	n_old=0 n_new=0 n_torn=0
	for ((i = 1; i <= total; i++)); do
		cp old "$VLE/standby.env"
		rm -f "$VLE"/.standby.env.*
		run env CRASH_AT=$i LD_PRELOAD="$PWD/shim.so" envapply -J "$VLE" -s "$VLE/staging/staged.env" "$VLE/standby.env" judged
		[ "$status" -eq 137 ] || { echo "call $i: exit status $status, not killed" >&2; return 1; }
		cmp -s "$VLE/standby.env" old || cmp -s "$VLE/standby.env" "$IMG" || n_torn=$((n_torn + 1))
		runbook recover
		if cmp -s "$VLE/standby.env" old; then
			n_old=$((n_old + 1))
			[ "${lines[-1]}" = 0 ]
		elif cmp -s "$VLE/standby.env" "$IMG"; then
			n_new=$((n_new + 1))
			[ "${lines[-1]}" = 1 ]
		else
			echo "killed at call $i of $total: after the recovery the target is neither old nor new" >&2
			return 1
		fi
		! ls "$VLE"/.standby.env.*.envsync-journal >/dev/null 2>&1 || { echo "call $i: journal left after the recovery" >&2; return 1; }
		runbook apply
		cmp "$VLE/standby.env" "$IMG"
	done
	echo "killed at each of $total calls: recovered to old $n_old, to new $n_new times ($n_torn times half written)" >&3
	# both ends occur (killed before the journal was complete, and after), and
	# some kills really left the target half written for the recovery to mend
	[ "$n_old" -gt 0 ] && [ "$n_new" -gt 0 ] && [ "$n_torn" -gt 0 ]
}

@test "roll back: the target is the old bytes again" {
	staged
	cp "$VLE/standby.env" old
	runbook apply
	cmp "$VLE/standby.env" "$IMG"
	runbook rollback
	cmp "$VLE/standby.env" old
	[ "${lines[-1]}" = 0 ]
}

@test "diverged revisions: shown, then the active's image bumped, staged and applied" {
	staged
	runbook apply
	rev=$(envrev "$IMG")
	# the standby's config changed by hand, its revision kept: diverged
	# shellcheck disable=SC2094 # -x names an item, not the file written
	envdump -x bios "$VLE/standby.env" > bios
	printf 'hostname=node-b\nntp=10.9.9.9\nmode=standby\n' > config
	# shellcheck disable=SC2094 # -x names an item, not the file written
	envdump -x bootenv "$VLE/standby.env" > bootenv
	envdump -r "$rev" bios=bios config=config bootenv=bootenv -o "$VLE/standby.env"
	run envrev -c "$VLE/standby.env" "$VLE/staging/staged.env"
	[ "$status" -eq 3 ]
	runbook diverged
	grep -qx 'exit status 3' "$BATS_TEST_TMPDIR/diverged.out"
	grep -qE '^config +changed ' "$BATS_TEST_TMPDIR/diverged.out"
	[ "$(envrev "$IMG")" = $((rev + 1)) ]
	cmp "$VLE/standby.env" "$IMG"
	cmp <(envdump -x config "$VLE/standby.env") "$ROOT/srv/env/config"
	[ "${lines[-1]}" = "in sync" ]
}

# Pacemaker: the page's cibadmin lines, run against a CIB file (CIB_file), no
# cluster needed; crm_simulate then places the group on the standby whose
# envsync-revision attribute is highest.
@test "pacemaker: the cibadmin configuration is valid; the rule prefers the up-to-date standby" {
	for c in cibadmin crm_verify crm_simulate crm_attribute; do
		command -v "$c" >/dev/null || skip "$c (Pacemaker) is not installed"
	done
	export CIB_file=$BATS_TEST_TMPDIR/cib.xml
	cibadmin --empty > "$CIB_file"
	crm_attribute -t crm_config -n stonith-enabled -v false
	cibadmin --create -o nodes --xml-text "<node id='1' uname='node1'/>"
	cibadmin --create -o nodes --xml-text "<node id='2' uname='node2'/>"
	cibadmin --create -o nodes --xml-text "<node id='3' uname='node3'/>"
	runbook pacemaker
	run crm_verify -L -V
	[ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
	cibadmin -Q -o resources | grep -q "<primitive[^>]* id=\"es\"[^>]*type=\"envsync\""
	cibadmin -Q -o constraints | grep -q 'score-attribute="envsync-revision"'
	# node1 (the active) is down; node2 and node3 are standbys at revisions
	# R2 and R3: the group must go to the one with the higher revision
	place() { # R2 R3: where crm_simulate starts svc
		cp "$CIB_file" sim.xml
		local n state=
		for n in 1 2 3; do
			local up=true rev=
			[ $n -eq 1 ] && up=false
			[ $n -eq 2 ] && rev=$1
			[ $n -eq 3 ] && rev=$2
			state="$state<node_state id='$n' uname='node$n' in_ccm='$up' crmd='$([ $up = true ] && echo online || echo offline)' join='$([ $up = true ] && echo member || echo down)' expected='$([ $up = true ] && echo member || echo down)'>"
			[ -z "$rev" ] || state="$state<transient_attributes id='$n'><instance_attributes id='status-$n'><nvpair id='status-$n-rev' name='envsync-revision' value='$rev'/></instance_attributes></transient_attributes>"
			state="$state</node_state>"
		done
		CIB_file=$PWD/sim.xml cibadmin --replace -o status --xml-text "<status>$state</status>"
		crm_simulate -x sim.xml -S 2>&1 | sed -n 's/.*Start *svc *( *\(node[0-9]\) *).*/\1/p'
	}
	[ "$(place 41 42)" = node3 ]
	[ "$(place 42 41)" = node2 ]
	[ "$(place 42 '')" = node2 ]
}
