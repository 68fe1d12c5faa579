#!/usr/bin/env bats
# uefi.bats: envsync on the real UEFI variable stores of Debian's ovmf
# package: byte-identical syncs between every pair, envdiff --explain=uefi on
# real and crafted changes, and one clear error for each kind of damage.
load common

OVMF=/usr/share/OVMF

# The files the expected explanations in t/expected/ were made from: ovmf
# 2022.11-6+deb12u2 (Debian 12).
known_sum() { # FILE
	case $1 in
	OVMF_VARS_4M.fd) echo 5d2ac383371b408398accee7ec27c8c09ea5b74a0de0ceea6513388b15be5d1e ;;
	OVMF_VARS_4M.ms.fd) echo e6044c5d1fd81998a5967d907ec425e48da534832c7d9b0b4c7a702b62019c50 ;;
	OVMF_VARS_4M.snakeoil.fd) echo 4460f43fb13d627f5b31e3457d08d4315e41ef4666d06808a4f981f6ee1e91bd ;;
	esac
}

need_ovmf() {
	compgen -G "$OVMF/OVMF_VARS*.fd" >/dev/null ||
		skip "no $OVMF/OVMF_VARS*.fd: install Debian's ovmf package (contrib/install-deps)"
}

# Copy the named Debian files here, skipping unless they are the very files
# the expected output was made from.
known() { # FILE...
	local f sum
	need_ovmf
	for f in "$@"; do
		[ -f "$OVMF/$f" ] || skip "no $OVMF/$f"
		sum=$(sha256sum < "$OVMF/$f")
		[ "${sum%% *}" = "$(known_sum "$f")" ] ||
			skip "$OVMF/$f is not the ovmf 2022.11-6+deb12u2 file t/expected/ was made from"
		cp "$OVMF/$f" .
	done
}

# Compare the last run's output with t/expected/NAME (ES_REGEN=1 rewrites it).
fw_expect() { # NAME
	local want=$ES_SRCDIR/t/expected/$1
	[ -z "${ES_REGEN-}" ] || printf '%s\n' "$output" > "$want"
	diff -u "$want" <(printf '%s\n' "$output")
}

# After `run`: exit status 2 and exactly one line, matching the glob PATTERN.
fw_one_error() { # PATTERN
	# shellcheck disable=SC2053 # $1 is a glob pattern, matched as one
	if [ "$status" -ne 2 ] || [ "${#lines[@]}" -ne 1 ] || [[ "$output" != $1 ]]; then
		printf 'status %s, output:\n%s\nexpected one line like: %s\n' "$status" "$output" "$1" >&2
		return 1
	fi
}

# NUMBER as 4 little-endian bytes in hex, for poke.
le32() {
	printf '%02x%02x%02x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255))
}

# The offset of the live record of the variable NAME (ASCII) in FILE.
record_of() { # FILE NAME
	local pat='' c off
	for ((c = 0; c < ${#2}; c++)); do pat+="${2:c:1}\\x00"; done
	# shellcheck disable=SC2013 # byte offsets: one number a line
	for off in $(LC_ALL=C grep -obUaP "$pat\\x00\\x00" "$1" | cut -d: -f1); do
		off=$((off - 60))
		if [ "$(xxd -s "$off" -l 3 -p "$1")" = aa553f ]; then
			echo "$off"
			return 0
		fi
	done
	return 1
}

@test "every pair of Debian's OVMF_VARS files syncs byte-identically: envdiff | envjudge | envapply" {
	need_ovmf
	local a b n=0
	for a in "$OVMF"/OVMF_VARS*.fd; do
		for b in "$OVMF"/OVMF_VARS*.fd; do
			[ "$a" != "$b" ] || continue
			cp "$a" std
			envdiff std "$b" | envjudge | envapply -s "$b" std
			cmp std "$b"
			run envdiff --explain=uefi std "$b"
			[ "$status" -eq 0 ]
			n=$((n + 1))
		done
	done
	echo "# $n ordered pairs synced" >&3
	[ "$n" -ge 2 ]
}

@test "explain: the Secure Boot variables OVMF_VARS_4M.ms.fd adds to the empty store" {
	known OVMF_VARS_4M.fd OVMF_VARS_4M.ms.fd
	run envdiff --explain=uefi OVMF_VARS_4M.fd OVMF_VARS_4M.ms.fd
	[ "$status" -eq 1 ]
	fw_expect uefi-plain-ms
	# auto finds the same, and the way back deletes every one of them
	run envdiff --explain=auto OVMF_VARS_4M.fd OVMF_VARS_4M.ms.fd
	[ "$status" -eq 1 ]
	fw_expect uefi-plain-ms
	run envdiff --explain=uefi OVMF_VARS_4M.ms.fd OVMF_VARS_4M.fd
	[ "$status" -eq 1 ]
	[[ "$output" == *"variables: 0 added, 31 deleted, 0 changed, 0 unchanged; records: 57 -> 0,"* ]]
}

@test "explain: Microsoft's keys against the snakeoil ones: PK, KEK, db, dbx changed" {
	known OVMF_VARS_4M.ms.fd OVMF_VARS_4M.snakeoil.fd
	run envdiff --explain=uefi OVMF_VARS_4M.ms.fd OVMF_VARS_4M.snakeoil.fd
	[ "$status" -eq 1 ]
	fw_expect uefi-ms-snakeoil
}

@test "explain: a variable rewritten the edk2 way (new record appended, old one deleted)" {
	known OVMF_VARS_4M.ms.fd
	cp OVMF_VARS_4M.ms.fd changed.fd
	# Timeout's record at 0x2938: 60-byte header, 16-byte name, 2 bytes of data;
	# the new copy goes where the free space starts (0x5998), Timeout 5
	dd if=OVMF_VARS_4M.ms.fd of=rec bs=1 skip=$((0x2938)) count=78 status=none
	poke rec 76 0500
	dd if=rec of=changed.fd bs=1 seek=$((0x5998)) conv=notrunc status=none
	poke changed.fd $((0x2938 + 2)) 3c
	run envdiff --explain=uefi OVMF_VARS_4M.ms.fd changed.fd
	[ "$status" -eq 1 ]
	fw_expect uefi-data
	# and the sync makes it byte-identical
	cp OVMF_VARS_4M.ms.fd std
	envdiff std changed.fd | envjudge | envapply -s changed.fd std
	cmp std changed.fd
}

@test "explain: changes of the State byte alone" {
	known OVMF_VARS_4M.ms.fd
	cp OVMF_VARS_4M.ms.fd state.fd
	poke state.fd $((0x2938 + 2)) 3d # Timeout: added -> deleted
	poke state.fd $((0x29e4 + 2)) 3e # Lang: added -> in deleted transition
	poke state.fd $((0x3b08 + 2)) 3c # an old BootOrder: deleted -> deleted after transition
	run envdiff --explain=uefi OVMF_VARS_4M.ms.fd state.fd
	[ "$status" -eq 1 ]
	fw_expect uefi-state
	# backwards, bits would have to be set: flash needs an erase
	run envdiff --explain=uefi state.fd OVMF_VARS_4M.ms.fd
	[ "$status" -eq 1 ]
	[[ "$output" == *"added   Timeout-8be4df61-93ca-11d2-aa0d-00e098032b8c: NV,BS,RT, 2 bytes; state only: record 0x2938 0x3d deleted -> 0x3f added (sets bits: flash needs an erase for that)"* ]]
}

@test "explain: identical stores exit 0" {
	need_ovmf
	for f in "$OVMF"/OVMF_VARS*.fd; do
		run envdiff --explain=auto "$f" "$f"
		[ "$status" -eq 0 ]
		[[ "${lines[-1]}" == "bytes: 0 of "*" differ" ]]
	done
}

@test "damaged stores: one line naming the file, the byte and the reason, exit 2" {
	need_ovmf
	local src=$OVMF/OVMF_VARS_4M.ms.fd
	[ -f "$src" ] || src=$(ls "$OVMF"/OVMF_VARS*.fd | tail -n 1)
	cp "$src" ok.fd
	local size pk store_end
	size=$(stat -c %s ok.fd)
	pk=$(record_of ok.fd PK) || skip "no live PK variable in $src"
	store_end=$((0x48 + $(od -An -tu4 -j $((0x58)) -N4 ok.fd)))

	head -c $((size / 2)) ok.fd > d
	run envdiff --explain=uefi ok.fd d
	fw_one_error "envdiff: d: byte 0x20: firmware volume length $size but the file has $((size / 2)) bytes (truncated?)"
	head -c 64 ok.fd > d
	run envdiff --explain=uefi ok.fd d
	fw_one_error "envdiff: d: byte 0x40: truncated firmware volume header (64 of at least 72 bytes)"
	randfile d 4096
	run envdiff --explain=uefi ok.fd d
	fw_one_error "envdiff: d: byte 0x28: no firmware volume signature \"_FVH\" (not a UEFI variable store)"
	cp ok.fd d && poke d $((0x33)) 00
	run envdiff --explain=uefi d ok.fd
	fw_one_error "envdiff: d: byte 0x32: firmware volume header checksum fails *"
	cp ok.fd d && poke d $((0x48)) 00
	run envdiff --explain=uefi ok.fd d
	fw_one_error "envdiff: d: byte 0x48: not a variable store: signature aaf32c00-947b-439a-a180-2e144ec37792"
	cp ok.fd d && poke d $((0x58)) "$(le32 "$size")"
	run envdiff --explain=uefi ok.fd d
	fw_one_error "envdiff: d: byte 0x58: variable store size $size does not fit the firmware volume *"
	cp ok.fd d && poke d $((0x5d)) ff
	run envdiff --explain=uefi ok.fd d
	fw_one_error "envdiff: d: byte 0x5c: variable store is not formatted and healthy (format 0x5a, state 0xff; *"
	# the store ends inside PK's header
	cp ok.fd d && poke d $((0x58)) "$(le32 $((pk + 20 - 0x48)))"
	run envdiff --explain=uefi ok.fd d
	fw_one_error "envdiff: d: record * at byte $(printf 0x%x "$pk"): its 60-byte header runs past the end of the variable store at byte $(printf 0x%x $((pk + 20)))"
	cp ok.fd d && poke d $((pk + 36)) ffffffff
	run envdiff --explain=uefi ok.fd d
	fw_one_error "envdiff: d: record * at byte $(printf 0x%x "$pk"): NameSize 4294967295 runs past the end of the variable store at byte $(printf 0x%x "$store_end")"
	cp ok.fd d && poke d $((pk + 36)) 05000000
	run envdiff --explain=uefi ok.fd d
	fw_one_error "envdiff: d: record * at byte $(printf 0x%x "$pk"): NameSize 5: odd size for a UCS-2 name"
	cp ok.fd d && poke d $((pk + 40)) "$(le32 $((1 << 20)))"
	run envdiff --explain=uefi ok.fd d
	fw_one_error "envdiff: d: record * at byte $(printf 0x%x "$pk"): DataSize 1048576 runs past the end of the variable store at byte $(printf 0x%x "$store_end")"
	# a DataSize too small: the next header would start inside PK's data
	cp ok.fd d && poke d $((pk + 40)) "$(le32 $(($(od -An -tu4 -j $((pk + 40)) -N4 ok.fd) - 8)))"
	run envdiff --explain=uefi ok.fd d
	fw_one_error "envdiff: d: byte 0x*: after record * neither a variable header (StartId 0x*, not 0x55aa) nor erased free space: a size before it is wrong or the store is damaged"
	cp ok.fd d && poke d $((store_end - 16)) 00
	run envdiff --explain=uefi ok.fd d
	fw_one_error "envdiff: d: byte $(printf 0x%x $((store_end - 16))): free space after the last variable is not erased (0x00, not 0xff)"
}

@test "--explain: usage errors and formats it does not know" {
	run envdiff --explain=bios a b
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown format 'bios'"* ]]
	run envdiff --explain=uefi -t a b
	[ "$status" -eq 2 ]
	run envdiff --explain=uefi a
	[ "$status" -eq 2 ]
	randfile a 8192 1
	randfile b 8192 2
	run envdiff --explain=auto a b
	fw_one_error "envdiff: a, b: unknown format: no UEFI firmware volume (\"_FVH\" at byte 0x28) and no U-Boot environment with a good CRC32; try --explain=uefi or --explain=uboot"
	run envdiff --explain=uefi missing b
	fw_one_error "envdiff: missing: cannot open: No such file or directory"
}
