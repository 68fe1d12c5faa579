# common.bash: shared setup for the bats tests.
# Each test runs in its own scratch directory; the tools come from PATH
# (make check puts the build's bin/ first).

setup() {
	cd "$BATS_TEST_TMPDIR" || exit 1
}

# Write N random bytes (reproducible from SEED) to FILE.
randfile() { # FILE N [SEED]
	head -c "$2" < <(openssl enc -aes-128-ctr -pass pass:"${3:-1}" -nosalt </dev/zero 2>/dev/null) > "$1"
}

# Overwrite bytes at OFFSET of FILE with the hex string HEX.
poke() { # FILE OFFSET HEX
	printf '%s' "$3" | xxd -r -p | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# Status and output helpers come from bats (run, $status, $output).
