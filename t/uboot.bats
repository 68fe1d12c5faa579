#!/usr/bin/env bats
# uboot.bats: envsync on U-Boot environments made by the real mkenvimage
# (u-boot-tools), changed by the real fw_setenv and read back by the real
# fw_printenv (libubootenv-tool): syncs a standby copy, envdiff
# --explain=uboot, refusals of bad CRC32s and damaged data, and what an
# insertion does to the judgment.
load common

VARS=$ES_SRCDIR/t/data/uboot-env.txt

need_uboot() {
	local t
	for t in mkenvimage fw_setenv fw_printenv; do
		command -v "$t" >/dev/null ||
			skip "$t is not installed (u-boot-tools, libubootenv-tool: contrib/install-deps)"
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

# A libubootenv configuration for FILE: one copy of SIZE at offset 0, or with
# -r two, at 0 and at SIZE.
config() { # FILE SIZE [-r]
	echo "$PWD/$1 0x0 $2"
	[ "${3-}" != -r ] || echo "$PWD/$1 $2 $2"
}

# An environment from t/data/uboot-env.txt, written once by fw_setenv so that
# its free space is as fw_setenv leaves it (zeros; mkenvimage leaves 0xff).
# With -r, a redundant pair: two copies of SIZE in the one file.
make_env() { # FILE SIZE [-r]
	if [ "${3-}" = -r ]; then
		mkenvimage -r -s "$2" -o copy "$VARS"
		cat copy copy > "$1"
	else
		mkenvimage -s "$2" -o "$1" "$VARS"
	fi
	config "$1" "$2" "${3-}" > "$1.cfg"
	fw_setenv -c "$1.cfg" bootdelay 3
}

# Bring standby.env to active.env with the pipeline, then check it byte for
# byte, by fw_printenv (which checks the CRC32) and by --explain; append
# the explanation of the change to explained.txt.
sync_round() {
	local want got
	cp standby.env before.env
	{ envdiff --explain=uboot before.env active.env || [ $? -eq 1 ]; } >> explained.txt
	envdiff standby.env active.env | envjudge | envapply -s active.env standby.env
	cmp standby.env active.env
	want=$(fw_printenv -c active.env.cfg)
	got=$(fw_printenv -c standby.env.cfg)
	[ "$got" = "$want" ]
	envdiff --explain=uboot standby.env active.env > /dev/null
}

# The changes fw_setenv makes to the active copy, one sync after each.
change_rounds() {
	fw_setenv -c active.env.cfg bootdelay 0 # one value changed
	sync_round
	fw_setenv -c active.env.cfg arch_variant aarch64 # one added
	sync_round
	fw_setenv -c active.env.cfg dhcpuboot # one removed
	sync_round
	cat > script <<-'EOF'
		board_rev=0x12
		board_revision=0xD03114
		boot_targets=usb0 mmc0 pxe dhcp
		bootargs=console=ttyS0,115200 root=/dev/mmcblk0p2 rootwait
		bootcmd_mmc0=devnum=0; run mmc_boot; echo mmc0 failed
		bootcmd_usb0=devnum=0; usb reset; run usb_boot
		bootdelay=1
		cpu=cortex-a72
		efi_dtb_prefixes=/ /dtb/ /dtb/current/ /boot/dtb/
		ethaddr=dc:a6:32:0a:0b:0c
		fdt_addr=2eff3000
		fdt_addr_r=0x03000000
		fdtcontroladdr=3af49f00
		fdtfile=broadcom/bcm2711-rpi-cm4.dtb
		initrd_high=0xffffffff
		fdt_high=0xffffffff
		kernel_addr_r=0x00400000
		loadaddr=0x01000000
		preboot=pci enum; usb start; setenv preboot_done 1
		pxefile_addr_r=0x03100000
		ramdisk_addr_r=0x03200000
		scriptaddr=0x02f00000
		serial#=100000009e8f7a6b
		soc=bcm2711
		stderr=serial
		stdin=serial
		stdout=serial
		vendor=raspberrypi-cm
	EOF
	fw_setenv -c active.env.cfg -s script # dozens changed
	sync_round
}

@test "single environment: after each fw_setenv change the synced standby reads the same" {
	need_uboot
	make_env active.env 0x4000
	cp active.env standby.env
	config standby.env 0x4000 > standby.env.cfg
	: > explained.txt
	change_rounds
	run cat explained.txt
	fw_expect uboot-single
}

@test "redundant pair: the synced standby reads the same, flags bytes and all" {
	need_uboot
	make_env active.env 0x2000 -r
	cp active.env standby.env
	config standby.env 0x2000 -r > standby.env.cfg
	: > explained.txt
	change_rounds
	# both copies' flags bytes, and the copy in use
	[ "$(xxd -s 4 -l 1 -p standby.env)$(xxd -s $((0x2004)) -l 1 -p standby.env)" = \
		"$(xxd -s 4 -l 1 -p active.env)$(xxd -s $((0x2004)) -l 1 -p active.env)" ]
	run cat explained.txt
	fw_expect uboot-pair
}

@test "explain: one copy of a redundant pair, and a pair with one bad copy" {
	need_uboot
	mkenvimage -r -s 0x2000 -o copy.env "$VARS"
	run envdiff --explain=auto copy.env copy.env
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "base copy.env: U-Boot environment, redundant copy of 8192 bytes, flags 1, CRC32 f8154272, 51 variables, 3139 of 8187 data bytes used" ]
	make_env pair.env 0x2000 -r
	cp pair.env old.env
	fw_setenv -c pair.env.cfg bootdelay 5 # goes to the other copy, flags + 1
	run envdiff --explain=uboot old.env pair.env
	[ "$status" -eq 1 ]
	[[ "${lines[0]}" == "base old.env: U-Boot environment, redundant pair of 2 x 8192 bytes, copy 2 active (flags 2; copy 1 flags 1), "* ]]
	[[ "${lines[1]}" == "result pair.env: U-Boot environment, redundant pair of 2 x 8192 bytes, copy 1 active (flags 3; copy 2 flags 2), "* ]]
	[ "${lines[2]}" = 'changed bootdelay: "3" -> "5"' ]
	# spoil the active copy: U-Boot falls back to the other, and so does --explain
	poke pair.env 100 00
	run envdiff --explain=uboot old.env pair.env
	[ "$status" -eq 1 ]
	[[ "${lines[1]}" == "result pair.env: U-Boot environment, redundant pair of 2 x 8192 bytes, copy 2 active (flags 2; copy 1 has a bad CRC32, ignored), "* ]]
	[ "${lines[2]}" = "variables: 0 added, 0 removed, 0 changed, 51 unchanged" ]
	[ "$(fw_printenv -c pair.env.cfg -n bootdelay)" = 3 ]
}

# The CRC32 of FILE's bytes from byte START on, little-endian in hex (gzip's
# trailer holds it).
crc_of() { # FILE START
	tail -c +$(($2 + 1)) "$1" | gzip -c | tail -c 8 | head -c 4 | xxd -p
}

@test "a bad CRC32 or damaged data is refused with one line, exit 2" {
	need_uboot
	make_env ok.env 0x1000
	cp ok.env bad.env
	poke bad.env 20 58
	run envdiff --explain=uboot ok.env bad.env
	fw_one_error "envdiff: bad.env: byte 0: bad CRC32: stored $(od -An -tx4 -N4 ok.env | tr -d ' '), computed * over bytes 4-4095 (single copy), * over bytes 5-4095 (redundant copy); no half is a valid redundant copy"
	run envdiff --explain=auto ok.env bad.env
	fw_one_error "envdiff: bad.env: byte 0: bad CRC32: *"
	# a pair with both copies spoilt
	make_env pair.env 0x1000 -r
	poke pair.env 10 00
	poke pair.env $((0x1000 + 10)) 00
	run envdiff --explain=uboot pair.env ok.env
	fw_one_error "envdiff: pair.env: byte 0: bad CRC32: *; no half is a valid redundant copy"
	# a good CRC32 over data that is not name=value strings
	cp ok.env d.env && poke d.env 4 "$(printf 'arch' | xxd -p)00"
	poke d.env 0 "$(crc_of d.env 4)"
	run envdiff --explain=uboot ok.env d.env
	fw_one_error "envdiff: d.env: byte 4: a 4-byte string that is not name=value (no '=')"
	cp ok.env d.env && poke d.env 4 3d
	poke d.env 0 "$(crc_of d.env 4)"
	run envdiff --explain=uboot ok.env d.env
	fw_one_error "envdiff: d.env: byte 4: a *-byte string that is not name=value (empty name)"
	{ printf 'a=b'; head -c 4093 /dev/zero | tr '\0' x; } > d.env
	poke d.env 0 "$(crc_of d.env 4)"
	run envdiff --explain=uboot ok.env d.env
	fw_one_error "envdiff: d.env: byte 4: variable runs past the end of the environment (no terminating 0 byte; the end marker is missing)"
	head -c 6 /dev/zero > short.env
	run envdiff --explain=uboot short.env ok.env
	fw_one_error "envdiff: short.env: 6 bytes: too short for a U-Boot environment"
	# and the sync itself is byte-level: it copies a bad environment faithfully
	cp ok.env std
	envdiff std bad.env | envjudge | envapply -s bad.env std
	cmp std bad.env
}

# envdiff | envjudge -v on the standby and active copies: the verbose line.
judge_line() { # [envjudge options]
	# shellcheck disable=SC2069 # the order is meant: stderr to the pipe, stdout dropped
	envdiff standby.env active.env | envjudge -v -q "$@" 2>&1 >/dev/null || true
}

@test "an insertion shifts everything after it: many spots, and full where the environment is filled" {
	need_uboot
	local size line
	for size in 0x1000 0x4000; do
		make_env active.env $size
		cp active.env standby.env
		fw_setenv -c active.env.cfg bootdelay 0 # a value changed in place
		line=$(judge_line)
		echo "# $size value change: $line" >&3
		[[ "$line" == "raw: 2 spots, 5 bytes, "*"-> delta" ]]
		cp active.env standby.env
		fw_setenv -c active.env.cfg arch_variant aarch64 # inserted after "arch"
		line=$(judge_line)
		echo "# $size insertion: $line" >&3
		[[ "$line" == "raw: 144 spots, 2957 bytes, "* ]]
		if [ $size = 0x1000 ]; then
			# 3160 of 4092 data bytes used: the shift is over half the image
			[[ "$line" == *"-> full" ]]
		else
			# 3160 of 16380: under half by bytes, but 144 spots
			[[ "$line" == *"-> delta" ]]
			line=$(judge_line -m spots -t 16)
			echo "# $size insertion, -m spots -t 16: $line" >&3
			[[ "$line" == *"-> full" ]]
		fi
		envdiff standby.env active.env | envjudge | envapply -s active.env standby.env
		cmp standby.env active.env
	done
}
