#!/usr/bin/env bats
# manpage.bats: the man pages agree with the code: the example diff stream in
# envsync(5) is what the built tools make, every option of a tool's --help is
# in its page, and the pages render without warnings.
load common

man_dir() { echo "$ES_SRCDIR/man"; }

# The verbatim lines of a page between `.\" BEGIN MARK` and `.\" END MARK`,
# roff requests dropped and the roff escapes used in them undone.
page_block() { # PAGE MARK
	sed -n "/^\.\\\\\" BEGIN $2\$/,/^\.\\\\\" END $2\$/p" "$1" |
		grep -v "^[.']" |
		sed -e 's/^\\&//' -e 's/\\-/-/g' -e "s/\\\\(aq/'/g" -e 's/\\e/\\/g'
}

# The same block as written in the page, for checking its escapes.
page_block_raw() { # PAGE MARK
	sed -n "/^\.\\\\\" BEGIN $2\$/,/^\.\\\\\" END $2\$/p" "$1" | grep -v "^[.']"
}

# Undo the page's folding of long lines: a line starting with two blanks right
# after an "end " line continues it.
unfold() {
	awk 'prev ~ /^end / && /^  / { sub(/^ +/, ""); out = out " " $0; prev = ""; next }
	     { if (NR > 1) print out; out = $0; prev = $0 }
	     END { if (NR) print out }'
}

@test "envsync(5): the annotated xxd dump is what envdump and envdiff make" {
	page="$(man_dir)/envsync.5"
	page_block "$page" EXAMPLE > page.txt
	[ -s page.txt ]
	"$ES_SRCDIR/t/mkexample" > made.txt
	diff -u made.txt page.txt
}

@test "envsync(5): the envdiff -t listing of the example is what envdiff prints" {
	page="$(man_dir)/envsync.5"
	page_block "$page" LISTING | unfold > page.txt
	[ -s page.txt ]
	"$ES_SRCDIR/t/mkexample" -t > made.txt
	diff -u made.txt page.txt
}

@test "envsync(5): the compressed example's header is what envdiff -z makes" {
	page="$(man_dir)/envsync.5"
	page_block "$page" ZEXAMPLE > page.txt
	[ -s page.txt ]
	"$ES_SRCDIR/t/mkexample" -z > made.txt
	diff -u made.txt page.txt
}

@test "envsync(5): verbatim blocks escape every hyphen and backslash" {
	page="$(man_dir)/envsync.5"
	for mark in EXAMPLE LISTING ZEXAMPLE; do
		run page_block_raw "$page" "$mark"
		[ "$status" -eq 0 ]
		[ -n "$output" ]
		# a '-' not preceded by a backslash renders as a typographic hyphen
		! grep -n '\(^\|[^\\]\)-' <<<"$output"
		# every backslash starts \-, \e, \( or \&
		! grep -n '\\[^-e(&]' <<<"$output"
	done
}

# Short and long options of a tool as its --help lists them, one a line.
help_options() { # TOOL
	"$1" --help | grep -E '^ +-' |
		sed -E 's/^ +//; s/  .*//; s/[=[].*//' |
		tr ',' '\n' | sed -E 's/^ +//; s/ .*//' | grep .
}

# A page's text with fonts and \- undone: what a reader sees, near enough.
page_text() { # PAGE
	sed -e 's/\\f[BIRP]//g' -e 's/\\f(..//g' -e 's/\\-/-/g' -e 's/\\&//g' "$1"
}

@test "every option in each tool's --help appears in its man page" {
	n=0
	for page in "$(man_dir)"/*.1; do
		tool=$(basename "$page" .1)
		command -v "$tool" >/dev/null || continue
		page_text "$page" > page.txt
		opts=$(help_options "$tool")
		[ -n "$opts" ]
		for o in $opts; do
			case $o in
			--*) re="(^|[^-A-Za-z0-9])${o}([^-A-Za-z0-9]|\$)" ;;
			*) re="(^|[^-A-Za-z0-9])\\${o}([^-A-Za-z0-9]|\$)" ;;
			esac
			if ! grep -qE -- "$re" page.txt; then
				echo "$tool: option $o is not in $page" >&2
				return 1
			fi
		done
		n=$((n + 1))
	done
	# at least the three foundation tools have pages
	[ "$n" -ge 3 ]
}

@test "each tool's page documents every exit status its --help names" {
	for page in "$(man_dir)"/*.1; do
		tool=$(basename "$page" .1)
		command -v "$tool" >/dev/null || continue
		grep -q '^\.SH "\?EXIT STATUS"\?$' "$page"
		# the paragraph after "Exit status:", up to the blank line
		codes=$("$tool" --help | awk '/Exit status:/ { on = 1 } on && !NF { exit } on' |
			tr '\n' ' ' | sed 's/.*Exit status://' |
			grep -oE '(^|[ ,])[0-9]+ ' | tr -dc '0-9\n ')
		[ -n "$codes" ]
		for c in $codes; do
			# an exit status is listed as a .TP tag line holding just the number
			sed -n '/^\.SH "\?EXIT STATUS/,/^\.SH/p' "$page" |
				grep -qE "^(\\.B )?$c\$" ||
				{ echo "$tool: exit status $c not in $page" >&2; return 1; }
		done
	done
}

@test "the man pages render without warnings" {
	command -v groff >/dev/null || skip "groff is not installed"
	for page in "$(man_dir)"/*.[157]; do
		run groff -man -ww -z "$page"
		[ "$status" -eq 0 ]
		[ -z "$output" ] || { echo "$page: $output" >&2; return 1; }
	done
	command -v man >/dev/null || skip "man is not installed"
	for page in "$(man_dir)"/*.[157]; do
		LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
			man --warnings -E UTF-8 -l -Tutf8 -Z "$page" >/dev/null 2>err.txt
		[ ! -s err.txt ] || { sed "s|^|$page: |" err.txt >&2; return 1; }
	done
}
