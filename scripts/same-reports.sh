#!/usr/bin/env bash
# same-reports.sh REV: are the reports of the working tree byte for byte
# those of REV? Builds perfhound at both, writes every report the analyzer
# makes from committed data with each (analyze of every fixture observation
# in text, markdown, JSON and HTML; compare of observations with one
# another and of every corpus pair, in text, markdown and JSON; stdout,
# stderr and exit status each), and lists what differs. For refactors that
# must not move a byte. Exit status 0: the same; 1: some differ.
#
#	scripts/same-reports.sh main~5
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: scripts/same-reports.sh REV}
GO=${GO:-go}
work=$(mktemp -d /tmp/perfhound-same-reports.XXXXXX)
trap 'git worktree remove --force "$work/src" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

git worktree add --detach -q "$work/src" "$rev"
(cd "$work/src" && "$GO" build -o "$work/before" ./cmd/perfhound)
"$GO" build -o "$work/after" ./cmd/perfhound

# dump BIN OUT: every report, one file each, with its stderr and status.
dump() {
	local bin=$1 out=$2 d n b f
	mkdir -p "$out"
	run() { # run NAME ARGS...
		local name=$1; shift
		"$bin" "$@" >"$out/$name" 2>"$out/$name.err" && echo 0 >>"$out/$name.err" || echo $? >>"$out/$name.err"
	}
	for d in fixtures/observations/*/; do
		n=$(basename "$d")
		for f in text markdown json html; do run "analyze-$n.$f" analyze "$d" --format $f; done
	done
	for b in fixtures/observations/*/; do
		for d in fixtures/observations/*/; do
			for f in text markdown json; do run "compare-$(basename "$b")-$(basename "$d").$f" compare "$b" "$d" --format $f; done
		done
	done
	for d in fixtures/corpus/*/; do
		[ -d "$d/base" ] || continue
		n=$(basename "$d")
		for f in text markdown json; do run "corpus-$n.$f" compare "$d/base" "$d/head" --format $f; done
	done
}
dump "$work/before" "$work/a"
dump "$work/after" "$work/b"
total=$(ls "$work/a" | wc -l)
if diff -rq "$work/a" "$work/b" >"$work/diff"; then
	echo "same-reports: all $total outputs of $rev and the working tree are the same"
	exit 0
fi
echo "same-reports: $(wc -l <"$work/diff") of $total outputs differ from $rev:"
sed "s|^Files $work/a/||; s| and $work/b/.* differ$||" "$work/diff"
exit 1
