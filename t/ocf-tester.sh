#!/bin/sh
# ocf-tester.sh: run resource-agents' ocf-tester against the envsync agent on
# generated samples, in three set-ups: env images with the diff recomputed;
# env images with a pre-staged diff and a calibration; raw images. After each
# the target must be byte-identical to the staged image.
#
# Usage: t/ocf-tester.sh [AGENT [BINDIR]]
#   AGENT   default: ocf/envsync beside this script's directory
#   BINDIR  the envsync tools, default: the build's bin/ (ES_BUILDDIR or the
#           source tree)
# Exit status: 0 all passed, 1 a failure, 77 ocf-tester is not installed.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
agent=${1:-$here/ocf/envsync}
bindir=${2:-${ES_BUILDDIR:-$here}/bin}
case $agent in /*) ;; *) agent=$(pwd)/$agent ;; esac
case $bindir in /*) ;; *) bindir=$(pwd)/$bindir ;; esac

if ! command -v ocf-tester >/dev/null 2>&1; then
	echo "ocf-tester.sh: ocf-tester not found (apt-get install resource-agents); skipped" >&2
	exit 77
fi
: "${OCF_ROOT:=/usr/lib/ocf}"
export OCF_ROOT

# ocf-tester runs meta-data as nobody: the work directory must be readable.
work=$(mktemp -d /tmp/envsync-ocf-tester.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
# The agent's log (ocf_log) goes here.
HA_LOGFILE=$work/ha.log
export HA_LOGFILE
sh "$here/samples/make-samples" "$work/samples" "$bindir/envdump" >/dev/null

fails=0
run() { # NAME STAGED TARGET [ocf-tester -o options...]
	name=$1 staged=$2 target=$3
	shift 3
	echo "== ocf-tester: $name"
	if ocf-tester -n "envsync_$name" -o staged="$staged" -o target="$target" \
		-o state_dir="$work/state-$name" -o bindir="$bindir" "$@" "$agent"; then
		if cmp "$staged" "$target"; then
			echo "   $target is byte-identical to $staged"
		else
			fails=$((fails + 1))
		fi
	else
		fails=$((fails + 1))
	fi
}

s=$work/samples
mkdir "$work/a" "$work/b" "$work/c"

cp "$s/active.env" "$work/a/staged.env"
cp "$s/standby.env" "$work/a/target.env"
run images "$work/a/staged.env" "$work/a/target.env"

cp "$s/active.env" "$work/b/staged.env"
cp "$s/standby.env" "$work/b/target.env"
"$bindir/envdiff" -o "$work/b/staged.envd" "$work/b/target.env" "$work/b/staged.env" || [ $? -eq 1 ]
"$bindir/envjudge" --calibrate "$work/b/target.env" --quick -o "$work/b/medium.cal" 2>/dev/null
run prestaged "$work/b/staged.env" "$work/b/target.env" \
	-o diff="$work/b/staged.envd" -o calibration="$work/b/medium.cal"
if grep -q 'envsync(envsync_prestaged).*at the staged image .* (pre-staged diff)' "$HA_LOGFILE"; then
	echo "   the pre-staged diff was used"
else
	echo "   the pre-staged diff was not used" >&2
	fails=$((fails + 1))
fi

cp "$s/active.fd" "$work/c/staged.fd"
cp "$s/standby.fd" "$work/c/target.fd"
run raw "$work/c/staged.fd" "$work/c/target.fd"

if [ "$fails" -ne 0 ]; then
	echo "ocf-tester.sh: $fails set-up(s) failed" >&2
	exit 1
fi
echo "ocf-tester.sh: all set-ups passed"
