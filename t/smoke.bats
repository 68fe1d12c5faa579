#!/usr/bin/env bats
# smoke.bats: the tools run and say who they are.
load common

@test "every tool answers --version and --help" {
	for t in envdump envdiff envrev; do
		run "$t" --version
		[ "$status" -eq 0 ]
		[[ "$output" == "$t (envsync) "* ]]
		run "$t" --help
		[ "$status" -eq 0 ]
		[[ "$output" == *"Exit status"* ]]
	done
}

@test "a usage error exits 2" {
	run envdiff onlyone
	[ "$status" -eq 2 ]
	run envrev -c a
	[ "$status" -eq 2 ]
}
