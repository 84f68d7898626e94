#!/bin/bash
# bench/run.sh [RUNTIME...]: time `RUNTIME run` of a busybox /bin/true
# container, BENCH_N times per runtime, and compare runtimes.
#
# Runtimes are paths or commands taking runc's command line; default:
# bin/berth-runtime, runc and crun (through tests/conformance/crun-wrapper.sh).
# Missing ones are skipped with a warning. Rounds are interleaved (one run of
# each runtime per round) so machine noise hits every runtime alike. Each
# runtime gets its own --root in a temp dir; everything is removed on exit.
#
# Environment:
#   BENCH_N         measured runs per runtime (default 100)
#   BENCH_WARMUP    unmeasured runs per runtime first (default 3)
#   BENCH_RUNTIMES  space-separated runtimes (overridden by arguments)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${BENCH_N:-100}
warmup=${BENCH_WARMUP:-3}

die() {
	echo "bench: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root"
[[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_N must be a positive integer"
[[ $warmup =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a non-negative integer"
command -v jq >/dev/null || die "jq not found (contrib/install-deps.sh)"

if [ $# -gt 0 ]; then
	requested=("$@")
elif [ -n "${BENCH_RUNTIMES:-}" ]; then
	read -r -a requested <<<"$BENCH_RUNTIMES"
else
	requested=("$repo/bin/berth-runtime" runc "$repo/tests/conformance/crun-wrapper.sh")
fi

runtimes=() labels=()
for r in "${requested[@]}"; do
	path=$(command -v "$r" || true)
	if [ -z "$path" ] || [ ! -x "$path" ]; then
		echo "bench: skipping $r: not found" >&2
		continue
	fi
	label=$(basename "$path")
	[ "$label" = crun-wrapper.sh ] && label=crun
	runtimes+=("$path")
	labels+=("$label")
done
[ ${#runtimes[@]} -gt 0 ] || die "no runtime to benchmark"

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
cleanup() {
	local i id
	for i in "${!runtimes[@]}"; do
		[ -d "$work/root$i" ] || continue
		for id in $("${runtimes[$i]}" --root "$work/root$i" list -q 2>/dev/null); do
			"${runtimes[$i]}" --root "$work/root$i" delete --force "$id" >/dev/null 2>&1 || true
		done
	done
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT

(cd "$repo" && go build -o "$work/measure" ./bench/measure) || die "building bench/measure failed"
"$repo/tests/fixtures/mkbundle.sh" "$work/bundle" >/dev/null
jq '.process.args = ["/bin/true"]' "$work/bundle/config.json" >"$work/config.json"
mv "$work/config.json" "$work/bundle/config.json"

for i in "${!runtimes[@]}"; do
	mkdir -p "$work/root$i"
	: >"$work/samples$i"
	: >"$work/failures$i"
done

# run_one I ID: one `run` of runtime I; a sample line goes to samples$I on
# success, the id to failures$I otherwise (after force-deleting leftovers).
run_one() {
	local i=$1 id=$2 out code
	out=$("$work/measure" "${runtimes[$i]}" --root "$work/root$i" run --bundle "$work/bundle" "$id" 2>"$work/stderr") || true
	code=${out##* }
	if [ -n "$out" ] && [ "$code" = 0 ]; then
		echo "$out" >>"$work/samples$i"
	else
		echo "bench: ${labels[$i]} run $id failed: $(head -c 300 "$work/stderr")" >&2
		echo "$id" >>"$work/failures$i"
		"${runtimes[$i]}" --root "$work/root$i" delete --force "$id" >/dev/null 2>&1 || true
	fi
}

echo "bench: ${labels[*]}: $warmup warm-up + $n measured runs each, interleaved" >&2
for ((k = 0; k < warmup; k++)); do
	for i in "${!runtimes[@]}"; do
		run_one "$i" "bench-w$k-$i"
	done
done
for i in "${!runtimes[@]}"; do
	: >"$work/samples$i"
	: >"$work/failures$i"
done
for ((k = 0; k < n; k++)); do
	for i in "${!runtimes[@]}"; do
		run_one "$i" "bench-$k-$i"
	done
done

# stats I: "median_ms p90_ms rss_median_kib rss_max_kib runs" of runtime I
# (nearest-rank percentiles).
stats() {
	local f=$work/samples$1
	[ -s "$f" ] || { echo "- - - - 0"; return; }
	paste <(cut -d' ' -f1 "$f" | sort -n) <(cut -d' ' -f2 "$f" | sort -n) |
		awk '{ t[NR] = $1; m[NR] = $2 }
			END {
				mid = int((NR + 1) / 2); p90 = int((NR * 9 + 9) / 10)
				med = (NR % 2) ? t[mid] : (t[mid] + t[mid + 1]) / 2
				printf "%.2f %.2f %d %d %d\n", med / 1e6, t[p90] / 1e6, m[mid], m[NR], NR
			}'
}

# Ratios are against berth-runtime when it ran, else against the first runtime.
base=0
for i in "${!labels[@]}"; do
	if [ "${labels[$i]}" = berth-runtime ]; then base=$i; fi
done
read -r base_med _ <<<"$(stats "$base")"

printf '%-16s %6s %6s %10s %10s %8s %14s %12s\n' runtime runs fails median_ms p90_ms ratio rss_median_kib rss_max_kib
failed=0
for i in "${!runtimes[@]}"; do
	read -r med p90 rss_med rss_max runs <<<"$(stats "$i")"
	fails=$(wc -l <"$work/failures$i")
	failed=$((failed + fails))
	ratio=$(awk -v a="$med" -v b="$base_med" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }')
	printf '%-16s %6s %6s %10s %10s %8s %14s %12s\n' "${labels[$i]}" "$runs" "$fails" "$med" "$p90" "$ratio" "$rss_med" "$rss_max"
done
echo "(ratio = median / median of ${labels[$base]}; rss = peak RSS of the runtime process and the helpers it waits for)"
[ "$failed" -eq 0 ] || die "$failed runs failed"
