# bench/lib.sh: shell functions shared by the bench/ scripts (sourced by
# bash; the caller sets prog, and verbose for say). Moved here from the
# retired diffbench and applybench so that bench/run and any later script
# time, copy and describe things the same way.
# shellcheck shell=bash
# The T_* results are for the callers; prog is the caller's name.
# shellcheck disable=SC2034,SC2154

die() { echo "$prog: $*" >&2; exit 2; }
say() { [ "${verbose:-0}" = 0 ] || echo "$prog: $*" >&2; }

bytes() { # 64M -> 67108864 (suffixes K, M, G: powers of 2)
	local n=${1%[KMGkmg]} s=${1##*[0-9]}
	[[ $n =~ ^[0-9]+$ ]] || die "'$1': not a size"
	case $s in
	'') echo "$n" ;;
	[Kk]) echo $((n << 10)) ;;
	[Mm]) echo $((n << 20)) ;;
	[Gg]) echo $((n << 30)) ;;
	*) die "'$1': not a size" ;;
	esac
}

human() { # 67108864 -> "64 MiB"
	local b=$1
	if ((b >= 1 << 30 && b % (1 << 30) == 0)); then echo "$((b >> 30)) GiB"
	elif ((b >= 1 << 20 && b % (1 << 20) == 0)); then echo "$((b >> 20)) MiB"
	elif ((b >= 1 << 10 && b % (1 << 10) == 0)); then echo "$((b >> 10)) KiB"
	else echo "$b B"; fi
}

median() { # NUMBERS... -> their median (empty without numbers)
	printf '%s\n' "$@" | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) print "";
		else if (NR % 2) print v[(NR + 1) / 2];
		else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# no_state FILE: no envsync state (journal, lock, rollback data,
# verified-state record) beside FILE
no_state() { rm -f "$(dirname "$1")/.$(basename "$1").envsync-"*; }

# fresh SRC DST: DST a fresh, durable copy of SRC with no envsync state
# (journal, lock, rollback data, verified-state record) beside it. Written
# as the cp peer writes (4 MiB at a time), which leaves it in the page cache
# in large folios, as a read from disk (readahead) does: cp's 128 KiB writes
# leave 128 KiB folios, and mapping those made a cold apply's check of a
# 1 GiB copy (envapply -n) 54-104 ms, median 63, against 42-43 here.
fresh() {
	no_state "$2"
	rm -f "$2"
	dd if="$1" of="$2" bs=4M conv=fsync status=none
}

# timed LIMIT SYNCFILE CMD...: run CMD (stdout to $T_STDOUT if set, else with
# stderr to $W/cmd.log)
# under GNU time, stopped after LIMIT seconds; fsync SYNCFILE (if not empty)
# inside the timing, as envapply fsyncs its own writes. Sets T_US (wall
# microseconds, bash's clock: time's %e has 10 ms steps), T_KIB (peak RSS of
# the largest process of CMD) and T_RC (CMD's exit status; 124: stopped).
# Needs W (a scratch directory). The caller syncs (sync -f) before a series
# of timed commands, so that nothing of the preparation is left to write back
# inside their timing; fresh copies are fsynced as they are made.
timed() {
	local limit=$1 f=$2 t0 t1
	shift 2
	T_RC=0
	t0=$EPOCHREALTIME
	/usr/bin/time -f '%M' -o "$W/time.out" timeout "$limit" "$@" 2>"$W/cmd.log" \
		>"${T_STDOUT:-$W/cmd.log}" || T_RC=$?
	if [ -n "$f" ] && [ "$T_RC" = 0 ]; then sync "$f"; fi
	t1=$EPOCHREALTIME
	T_US=$((${t1/./} - ${t0/./}))
	T_KIB=$(tail -n 1 "$W/time.out")
	[[ $T_KIB =~ ^[0-9]+$ ]] || T_KIB=0
}

build_helper() { # DIR NAME: compile bench/NAME.c into DIR/NAME, if not there yet
	local src
	src=$(dirname "${BASH_SOURCE[0]}")/$2.c
	[ -r "$src" ] || die "$src not found"
	command -v cc >/dev/null || die "cc not found (contrib/install-deps)"
	if [ ! -x "$1/$2" ] || [ "$src" -nt "$1/$2" ]; then
		cc -std=gnu11 -O2 -Wall -Wextra -o "$1/$2" "$src" || die "cannot compile $src"
	fi
}

# machine DIR: what the figures were measured on, one "key: value" a line.
machine() {
	local cpu mem fs
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	fs=$(df -PT "$1" | awk 'NR == 2 { print $2 " on " $1 }')
	echo "cpu: ${cpu:-unknown}, $(nproc) cores ($(uname -srm))"
	echo "memory: $mem"
	echo "filesystem: $fs (the scratch directory)"
	echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min averages)"
}

short() { # 67108864 -> 64M
	local b=$1
	if ((b >= 1 << 30 && b % (1 << 30) == 0)); then echo "$((b >> 30))G"
	elif ((b >= 1 << 20 && b % (1 << 20) == 0)); then echo "$((b >> 20))M"
	elif ((b >= 1 << 10 && b % (1 << 10) == 0)); then echo "$((b >> 10))K"
	else echo "$b"; fi
}
