#!/bin/sh
# record.sh re-records base.txt and head.txt: real `go test -bench` output
# of this package, six runs a side, whose custom metrics include NaN, +Inf
# and -Inf (see cache_test.go). perfhound's tests read them as they are.
#
#	analyzer/compare/testdata/nonfinite/record.sh
set -eu
cd "$(dirname "$0")"
for side in base head; do
	go test -run '^$' -bench . -benchmem -count 6 >"$side.txt"
done
