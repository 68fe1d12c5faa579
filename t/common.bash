# common.bash: shared setup for the bats tests.
# Each test runs in its own scratch directory; the tools come from PATH
# (make check puts the build's bin/ first).
# The bats files that load this use its variables and pass crc32 its -x,
# which shellcheck, checking this file alone, cannot see:
# shellcheck disable=SC2034,SC2119,SC2120

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

# ---- helpers for the tool tests (envdump, envrev, envdiff, bad input) ----

# `run --separate-stderr` ($stderr, $stderr_lines) needs bats 1.5.
bats_require_minimum_version 1.5.0

# CRC32 (zlib's) of stdin, printed as the 8 hex digits of its little-endian
# encoding, ready for poke; with -x, as a number (as envdump -l prints it).
# Pure bash (no helper to build): the inputs are a few hundred bytes.
_ES_CRCTAB=(
	0x00000000 0x77073096 0xee0e612c 0x990951ba 0x076dc419 0x706af48f 0xe963a535 0x9e6495a3
	0x0edb8832 0x79dcb8a4 0xe0d5e91e 0x97d2d988 0x09b64c2b 0x7eb17cbd 0xe7b82d07 0x90bf1d91
	0x1db71064 0x6ab020f2 0xf3b97148 0x84be41de 0x1adad47d 0x6ddde4eb 0xf4d4b551 0x83d385c7
	0x136c9856 0x646ba8c0 0xfd62f97a 0x8a65c9ec 0x14015c4f 0x63066cd9 0xfa0f3d63 0x8d080df5
	0x3b6e20c8 0x4c69105e 0xd56041e4 0xa2677172 0x3c03e4d1 0x4b04d447 0xd20d85fd 0xa50ab56b
	0x35b5a8fa 0x42b2986c 0xdbbbc9d6 0xacbcf940 0x32d86ce3 0x45df5c75 0xdcd60dcf 0xabd13d59
	0x26d930ac 0x51de003a 0xc8d75180 0xbfd06116 0x21b4f4b5 0x56b3c423 0xcfba9599 0xb8bda50f
	0x2802b89e 0x5f058808 0xc60cd9b2 0xb10be924 0x2f6f7c87 0x58684c11 0xc1611dab 0xb6662d3d
	0x76dc4190 0x01db7106 0x98d220bc 0xefd5102a 0x71b18589 0x06b6b51f 0x9fbfe4a5 0xe8b8d433
	0x7807c9a2 0x0f00f934 0x9609a88e 0xe10e9818 0x7f6a0dbb 0x086d3d2d 0x91646c97 0xe6635c01
	0x6b6b51f4 0x1c6c6162 0x856530d8 0xf262004e 0x6c0695ed 0x1b01a57b 0x8208f4c1 0xf50fc457
	0x65b0d9c6 0x12b7e950 0x8bbeb8ea 0xfcb9887c 0x62dd1ddf 0x15da2d49 0x8cd37cf3 0xfbd44c65
	0x4db26158 0x3ab551ce 0xa3bc0074 0xd4bb30e2 0x4adfa541 0x3dd895d7 0xa4d1c46d 0xd3d6f4fb
	0x4369e96a 0x346ed9fc 0xad678846 0xda60b8d0 0x44042d73 0x33031de5 0xaa0a4c5f 0xdd0d7cc9
	0x5005713c 0x270241aa 0xbe0b1010 0xc90c2086 0x5768b525 0x206f85b3 0xb966d409 0xce61e49f
	0x5edef90e 0x29d9c998 0xb0d09822 0xc7d7a8b4 0x59b33d17 0x2eb40d81 0xb7bd5c3b 0xc0ba6cad
	0xedb88320 0x9abfb3b6 0x03b6e20c 0x74b1d29a 0xead54739 0x9dd277af 0x04db2615 0x73dc1683
	0xe3630b12 0x94643b84 0x0d6d6a3e 0x7a6a5aa8 0xe40ecf0b 0x9309ff9d 0x0a00ae27 0x7d079eb1
	0xf00f9344 0x8708a3d2 0x1e01f268 0x6906c2fe 0xf762575d 0x806567cb 0x196c3671 0x6e6b06e7
	0xfed41b76 0x89d32be0 0x10da7a5a 0x67dd4acc 0xf9b9df6f 0x8ebeeff9 0x17b7be43 0x60b08ed5
	0xd6d6a3e8 0xa1d1937e 0x38d8c2c4 0x4fdff252 0xd1bb67f1 0xa6bc5767 0x3fb506dd 0x48b2364b
	0xd80d2bda 0xaf0a1b4c 0x36034af6 0x41047a60 0xdf60efc3 0xa867df55 0x316e8eef 0x4669be79
	0xcb61b38c 0xbc66831a 0x256fd2a0 0x5268e236 0xcc0c7795 0xbb0b4703 0x220216b9 0x5505262f
	0xc5ba3bbe 0xb2bd0b28 0x2bb45a92 0x5cb36a04 0xc2d7ffa7 0xb5d0cf31 0x2cd99e8b 0x5bdeae1d
	0x9b64c2b0 0xec63f226 0x756aa39c 0x026d930a 0x9c0906a9 0xeb0e363f 0x72076785 0x05005713
	0x95bf4a82 0xe2b87a14 0x7bb12bae 0x0cb61b38 0x92d28e9b 0xe5d5be0d 0x7cdcefb7 0x0bdbdf21
	0x86d3d2d4 0xf1d4e242 0x68ddb3f8 0x1fda836e 0x81be16cd 0xf6b9265b 0x6fb077e1 0x18b74777
	0x88085ae6 0xff0f6a70 0x66063bca 0x11010b5c 0x8f659eff 0xf862ae69 0x616bffd3 0x166ccf45
	0xa00ae278 0xd70dd2ee 0x4e048354 0x3903b3c2 0xa7672661 0xd06016f7 0x4969474d 0x3e6e77db
	0xaed16a4a 0xd9d65adc 0x40df0b66 0x37d83bf0 0xa9bcae53 0xdebb9ec5 0x47b2cf7f 0x30b5ffe9
	0xbdbdf21c 0xcabac28a 0x53b39330 0x24b4a3a6 0xbad03605 0xcdd70693 0x54de5729 0x23d967bf
	0xb3667a2e 0xc4614ab8 0x5d681b02 0x2a6f2b94 0xb40bbe37 0xc30c8ea1 0x5a05df1b 0x2d02ef8d
)
# (The byte loops below run in a subshell without bats' DEBUG trap, which
# would make them some 25 times slower.)
crc32() ( # [-x] < DATA
	trap - DEBUG
	c=4294967295
	for b in $(xxd -p -c 1); do
		c=$((_ES_CRCTAB[(c ^ 0x$b) & 255] ^ (c >> 8)))
	done
	c=$((c ^ 4294967295))
	if [ "${1-}" = -x ]; then
		printf '%08x\n' "$c"
	else
		lehex "$c" 4
	fi
)

# Write N deterministic pseudo-random bytes (from SEED, default 1) to FILE:
# the same on every machine, so listings of them can be kept in t/expected/.
patfile() { # FILE N [SEED]
	awk -v n="$2" -v s="${3:-1}" 'BEGIN {
		x = s % 65537
		for (i = 0; i < n; i++) {
			x = (x * 75 + 74) % 65537
			printf "%02x", x % 256
			if (i % 32 == 31) printf "\n"
		}
	}' | xxd -r -p > "$1"
}

# Write N zero bytes to FILE.
zerofile() { # FILE N
	head -c "$2" /dev/zero > "$1"
}

# Flip the bits of byte OFFSET of FILE (XOR with MASK, default ff), so the
# byte is sure to change.
flip() { # FILE OFFSET [MASK]
	local b
	b=$(xxd -s "$2" -l 1 -p "$1")
	poke "$1" "$2" "$(printf '%02x' $((0x$b ^ 0x${3:-ff})))"
}

# XOR the bytes of FILE from OFFSET with the hex string HEX.
xorpoke() ( # FILE OFFSET HEX
	trap - DEBUG
	local old new='' x i
	old=$(xxd -s "$2" -l $((${#3} / 2)) -p -c 4096 "$1")
	for ((i = 0; i < ${#3}; i += 2)); do
		printf -v x '%02x' $((0x${old:i:2} ^ 0x${3:i:2}))
		new=$new$x
	done
	poke "$1" "$2" "$new"
)

# XORing this at any offset of a string leaves its CRC32 as it was (it is the
# CRC32 generator polynomial, in zlib's bit order).
CRC_COLLIDE=410671db01

# Flip a run of COUNT bytes of FILE from OFFSET (each XOR ff).
fliprun() { # FILE OFFSET COUNT
	local hex
	hex=$(xxd -s "$2" -l "$3" -p -c 4096 "$1" | tr 0123456789abcdef fedcba9876543210)
	poke "$1" "$2" "$hex"
}

# The unsigned little-endian number of WIDTH (1, 2, 4 or 8) bytes at OFFSET of FILE.
getle() { # FILE OFFSET WIDTH
	local hex r=
	hex=$(xxd -s "$2" -l "$3" -p "$1")
	while [ -n "$hex" ]; do
		r=$r${hex: -2}
		hex=${hex%??}
	done
	printf '%u\n' "0x$r"
}

# NUMBER as WIDTH little-endian bytes, in hex (for poke).
lehex() { # NUMBER WIDTH
	local i v=$1 r=
	for ((i = 0; i < $2; i++)); do
		r=$r$(printf '%02x' $((v & 255)))
		v=$((v >> 8))
	done
	printf '%s\n' "$r"
}

# Put NUMBER as a WIDTH-byte little-endian field at OFFSET of FILE.
pokele() { # FILE OFFSET WIDTH NUMBER
	poke "$1" "$2" "$(lehex "$4" "$3")"
}

# Recompute an env image's header CRC32 (at 28: bytes 0..27 and the directory
# of as many entries as the header's item count says).
img_fix_crc() { # FILE
	local n
	n=$(getle "$1" 12 4)
	poke "$1" 28 "$({ head -c 28 "$1"; tail -c +33 "$1" | head -c $((n * 80)); } | crc32)"
}

# Recompute a diff stream's header CRC32 (at 44, over bytes 0..43).
st_fix_hdr() { # FILE
	poke "$1" 44 "$(head -c 44 "$1" | crc32)"
}

# Recompute a diff stream's tail: its length field and the CRC32 of all bytes
# before the CRC.
st_fix_tail() { # FILE
	local len
	len=$(stat -c %s "$1")
	pokele "$1" $((len - 16)) 8 "$len"
	poke "$1" $((len - 4)) "$(head -c $((len - 4)) "$1" | crc32)"
}

# After `run --separate-stderr`: the command failed with status 2 (or STATUS),
# said exactly one line on stderr, and that line matches the glob PATTERN.
one_error() { # PATTERN [STATUS]
	local want=${2:-2}
	if [ "$status" -ne "$want" ]; then
		echo "exit status $status, expected $want; stderr: $stderr" >&2
		return 1
	fi
	if [ "${#stderr_lines[@]}" -ne 1 ]; then
		echo "expected one line on stderr, got ${#stderr_lines[@]}: $stderr" >&2
		return 1
	fi
	# shellcheck disable=SC2053
	if [[ "$stderr" != $1 ]]; then
		echo "stderr: $stderr" >&2
		echo "does not match: $1" >&2
		return 1
	fi
}

# The file exists and nothing else named FILE.tmp* is beside it, or, with
# "absent", FILE does not exist either.
no_temps() { # FILE [absent]
	local t
	for t in "$1".tmp*; do
		if [ -e "$t" ]; then
			echo "temporary file left behind: $t" >&2
			return 1
		fi
	done
	if [ "${2-}" = absent ] && [ -e "$1" ]; then
		echo "$1 exists but should not" >&2
		return 1
	fi
}

# Compare the output of the last `run` with t/expected/NAME, exactly.
expect_output() { # NAME
	local want=$ES_SRCDIR/t/expected/$1
	if [ -n "${ES_REGEN-}" ]; then
		printf '%s\n' "$output" > "$want"
	fi
	diff -u "$want" <(printf '%s\n' "$output")
}

# Rebuild an item's result from its BASE bytes and the `envdiff -t` listing
# on stdin, by XORing every entry's bytes into BASE, and write it to OUT: an
# independent check that the listing is the XOR of the two sides. ITEM
# (default: the first item listed) picks the item.
xor_apply() ( # BASE OUT [ITEM] < LISTING
	trap - DEBUG
	local -a b
	local line flag off size data rsize=0 total i k run=0 base_size mine=0 seen=0
	mapfile -t b < <(xxd -p -c 1 "$1")
	base_size=${#b[@]}
	while read -r line; do
		case $line in
		"item "*)
			mine=0
			if [ -z "${3-}" ] && [ "$seen" -eq 0 ] || [ "${line%%: *}" = "item ${3-}" ]; then
				mine=1
				seen=1
				rsize=${line##*-> }
				rsize=${rsize% bytes}
				total=$((rsize > base_size ? rsize : base_size))
				for ((i = base_size; i < total; i++)); do b[i]=00; done
			fi
			continue ;;
		Data* | Area* | Cont*) [ "$mine" -eq 1 ] || continue ;;
		*) continue ;;
		esac
		read -r flag off size data <<<"$line"
		case $flag in
		Data) off=$((off)); run=$off ;;
		Area) off=$((off)); run=$off; size=8 ;;
		Cont) off=$((run + ${off#+})) ;;
		esac
		for ((k = 0; k < size; k++)); do
			i=$((off + k))
			printf -v 'b[i]' '%02x' $((0x${b[i]} ^ 0x${data:2*k:2}))
		done
	done
	[ "$seen" -eq 1 ] || { echo "xor_apply: no item ${3-} in the listing" >&2; return 1; }
	printf '%s' "${b[@]:0:rsize}" | xxd -r -p > "$2"
)

# A light `run --separate-stderr` (bats' own costs tens of milliseconds a
# call, too much for the bad-input loops): runs CMD... and sets status,
# output, lines, stderr and stderr_lines the same way.
xrun() { # CMD...
	local o=$BATS_TEST_TMPDIR/.xrun.out e=$BATS_TEST_TMPDIR/.xrun.err
	status=0
	"$@" > "$o" 2> "$e" || status=$?
	mapfile -t lines < "$o"
	mapfile -t stderr_lines < "$e"
	IFS= read -r -d '' output < "$o" || :
	IFS= read -r -d '' stderr < "$e" || :
	while [[ $output == *$'\n' ]]; do output=${output%$'\n'}; done
	while [[ $stderr == *$'\n' ]]; do stderr=${stderr%$'\n'}; done
}

# Whether `ulimit -v` cannot apply to the tools, whose memory bound is then
# checked by the plain run only: an AddressSanitizer build reserves terabytes
# of address space (ES_ASAN is set by .ci/run, or nm sees the runtime), and
# valgrind (make check-valgrind, ES_TEST_SLOWDOWN > 1) maps more than 64 MiB
# before the tool starts.
no_ulimit_v() {
	[ -n "${ES_ASAN-}" ] || [ "${ES_TEST_SLOWDOWN:-1}" != 1 ] ||
		nm "$(command -v envdiff)" 2>/dev/null | grep -q __asan_init
}
