#!/bin/bash
# bench/run.sh [RUNTIME...]: time `RUNTIME run` of a busybox /bin/true
# container, then `RUNTIME exec ID /bin/true` in a running busybox container,
# BENCH_N times each per runtime, and compare runtimes.
#
# Runtimes are paths or commands taking runc's command line; default:
# bin/berth-runtime, runc and crun. Missing ones are skipped with a warning.
# The whole run happens in one private mount namespace (bench/namespace.sh).
# Rounds are interleaved (one run of each runtime per round) so machine noise
# hits every runtime alike. Each runtime gets its own --root in a temp dir;
# everything, the containers exec runs in included, is removed on exit.
#
# Environment:
#   BENCH_N         measured runs (and execs) per runtime (default 100)
#   BENCH_WARMUP    unmeasured runs (and execs) per runtime first (default 3)
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

. "$repo/bench/namespace.sh" "$@"
[[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_N must be a positive integer"
[[ $warmup =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a non-negative integer"
command -v jq >/dev/null || die "jq not found (contrib/install-deps.sh)"

if [ $# -gt 0 ]; then
	requested=("$@")
elif [ -n "${BENCH_RUNTIMES:-}" ]; then
	read -r -a requested <<<"$BENCH_RUNTIMES"
else
	requested=("$repo/bin/berth-runtime" runc crun)
fi

runtimes=() labels=()
for r in "${requested[@]}"; do
	path=$(command -v "$r" || true)
	if [ -z "$path" ] || [ ! -x "$path" ]; then
		echo "bench: skipping $r: not found" >&2
		continue
	fi
	label=$(basename "$path")
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
done

# measure_one PHASE I WHAT ARG...: one measured `RUNTIME --root R ARG...` of
# runtime I; a sample line goes to PHASE-samples$I on success, WHAT to
# PHASE-failures$I otherwise.
measure_one() {
	local phase=$1 i=$2 what=$3 out code
	shift 3
	out=$("$work/measure" "${runtimes[$i]}" --root "$work/root$i" "$@" 2>"$work/stderr") || true
	code=${out##* }
	if [ -n "$out" ] && [ "$code" = 0 ]; then
		echo "$out" >>"$work/$phase-samples$i"
		return
	fi
	echo "bench: ${labels[$i]} $what failed: $(head -c 300 "$work/stderr")" >&2
	echo "$what" >>"$work/$phase-failures$i"
	return 1
}

# run_one I ID: `run` of container ID; a failed run's leftovers are deleted.
run_one() {
	measure_one start "$1" "run $2" run --bundle "$work/bundle" "$2" ||
		"${runtimes[$1]}" --root "$work/root$1" delete --force "$2" >/dev/null 2>&1 || true
}

# exec_one I: `exec` of /bin/true in runtime I's running container, if it
# started.
exec_one() {
	[ -z "${down[$1]:-}" ] || return 0
	measure_one exec "$1" "exec bench-exec-$1" exec "bench-exec-$1" /bin/true || true
}

# bench PHASE FN: BENCH_WARMUP unmeasured rounds of FN, then BENCH_N measured
# ones; FN gets the runtime index and a container id.
bench() {
	local phase=$1 fn=$2 i k
	echo "bench: $phase: ${labels[*]}: $warmup warm-up + $n measured runs each, interleaved" >&2
	for ((k = 0; k < warmup; k++)); do
		for i in "${!runtimes[@]}"; do
			"$fn" "$i" "bench-w$k-$i"
		done
	done
	for i in "${!runtimes[@]}"; do
		: >"$work/$phase-samples$i"
		: >"$work/$phase-failures$i"
	done
	for ((k = 0; k < n; k++)); do
		for i in "${!runtimes[@]}"; do
			"$fn" "$i" "bench-$k-$i"
		done
	done
}

# stats FILE: "median_ms p90_ms rss_median_kib rss_max_kib runs" of the
# samples in FILE (nearest-rank percentiles).
stats() {
	local f=$1
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

# report PHASE: the table of PHASE; adds its failures to $failed.
failed=0
report() {
	local phase=$1 i base_med med p90 rss_med rss_max runs fails ratio
	read -r base_med _ <<<"$(stats "$work/$phase-samples$base")"
	printf '%-16s %6s %6s %10s %10s %8s %14s %12s\n' runtime runs fails median_ms p90_ms ratio rss_median_kib rss_max_kib
	for i in "${!runtimes[@]}"; do
		read -r med p90 rss_med rss_max runs <<<"$(stats "$work/$phase-samples$i")"
		fails=$(wc -l <"$work/$phase-failures$i")
		failed=$((failed + fails))
		ratio=$(awk -v a="$med" -v b="$base_med" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }')
		printf '%-16s %6s %6s %10s %10s %8s %14s %12s\n' "${labels[$i]}" "$runs" "$fails" "$med" "$p90" "$ratio" "$rss_med" "$rss_max"
	done
}

bench start run_one
report start
echo "(ratio = median / median of ${labels[$base]}; rss = peak RSS of the runtime process and the helpers it waits for)"

# exec: one long-running container per runtime, started unmeasured. Its
# stdio is /dev/null: it must not hold on to this script's output.
jq '.process.args = ["/bin/sleep", "1000"]' "$work/bundle/config.json" >"$work/config.json"
mv "$work/config.json" "$work/bundle/config.json"
down=()
for i in "${!runtimes[@]}"; do
	if ! "${runtimes[$i]}" --root "$work/root$i" run -d --bundle "$work/bundle" "bench-exec-$i" \
		</dev/null >/dev/null 2>"$work/stderr"; then
		echo "bench: ${labels[$i]} run -d of the exec container failed: $(head -c 300 "$work/stderr")" >&2
		down[i]=1
	fi
done
bench exec exec_one
for i in "${!down[@]}"; do
	echo "run -d bench-exec-$i" >>"$work/exec-failures$i"
done
echo
echo "exec of /bin/true in a running container:"
report exec
echo "(ratio = median / median of ${labels[$base]}; rss = peak RSS of the runtime's exec process and the helpers it waits for)"
[ "$failed" -eq 0 ] || die "$failed runs failed"
