#!/bin/bash
# run.sh RUNTIME [OUTDIR]: run the OCI runtime-tools validation suite against
# RUNTIME (a path or a command in PATH taking runc's command line).
#
# Writes to OUTDIR (default: a new dir under /tmp):
#   tap/NAME.tap, tap/NAME.err   each program's TAP stdout and stderr
#   summary.tsv                  one row per program
#   summary.md                   the same as a markdown report
# Exits 1 only when a program listed in expected-pass.txt (or $EXPECTED_PASS)
# does not pass, so CI catches regressions without requiring full conformance.
#
# Environment:
#   CONFORMANCE_TIMEOUT   seconds per program (default 60)
#   CONFORMANCE_PROGRAMS  space-separated subset of programs to run
#   CONFORMANCE_MASK_FILES  space-separated files hidden behind an empty file
#                         in each program's mount namespace; for crun on this
#                         hybrid host: /sys/fs/cgroup/unified/cgroup.controllers
#                         (crun-wrapper.sh then passes through, so namespace
#                         tests see crun in the program's own mount namespace)
#   EXPECTED_PASS         expected-pass list (default: next to this script)
#   BERTH_TEST_CACHE      cache root for the built suite (see build.sh)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
	echo "usage: $0 RUNTIME [OUTDIR]" >&2
	exit 2
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
[ "$(id -u)" -eq 0 ] || { echo "run.sh: must run as root" >&2; exit 2; }
for tool in jq tar unshare timeout; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool not found (contrib/install-deps.sh)" >&2; exit 2; }
done

# Programs run with the cache as cwd, so RUNTIME must be absolute.
runtime=$(command -v "$1" || true)
if [ -z "$runtime" ] || [ ! -x "$runtime" ]; then
	echo "run.sh: runtime $1 not found" >&2
	exit 2
fi
runtime="$(cd "$(dirname "$runtime")" && pwd)/$(basename "$runtime")"

outdir=${2:-$(mktemp -d /tmp/berth-conformance.XXXXXX)}
mkdir -p "$outdir/tap"
outdir=$(cd "$outdir" && pwd)
timeout_s=${CONFORMANCE_TIMEOUT:-60}
expected_file=${EXPECTED_PASS:-$here/expected-pass.txt}

cache=$("$here/build.sh" | tail -n1)

# Programs share fixed names (cgroup "cgrouptest", the runtime's default
# --root): concurrent runs would break each other, so take turns. Programs
# run with fd 8 closed so no container outlives the run holding the lock.
lock=/run/lock/berth-conformance.lock
mkdir -p "$(dirname "$lock")"
exec 8>"$lock"
if ! flock -n 8; then
	echo "conformance: waiting for another run to finish ($lock)" >&2
	flock 8
fi

if [ -n "${CONFORMANCE_PROGRAMS:-}" ]; then
	read -r -a programs <<<"$CONFORMANCE_PROGRAMS"
else
	mapfile -t programs <"$cache/programs.txt"
fi

declare -A expected=()
if [ -f "$expected_file" ]; then
	while read -r name _; do
		case $name in '' | '#'*) continue ;; esac
		expected[$name]=1
	done <"$expected_file"
fi

# Bundles are created under TMPDIR (os.MkdirTemp); a private one lets us find
# and remove what a killed program left behind, and only that.
scratch=$(mktemp -d /tmp/berth-conformance-tmp.XXXXXX)
# Like /tmp, it must be searchable by the ids of user-namespaced containers.
chmod 0755 "$scratch"
read -r -a mask_files <<<"${CONFORMANCE_MASK_FILES:-}"
empty="$scratch.empty"
: >"$empty"

# cleanup_leftovers: force-delete containers whose bundle is in our scratch
# dir, then remove the bundles. Programs clean up after themselves unless they
# time out or crash.
cleanup_leftovers() {
	local id
	for id in $("$runtime" list --format json 2>/dev/null |
		jq -r --arg p "$scratch/" '.[]? | select(.bundle | startswith($p)) | .id'); do
		"$runtime" delete --force "$id" >/dev/null 2>&1 || true
	done
	# Never let rm descend into a mount (a leaked /proc or bind mount):
	# detach any, deepest first, and stay on one file system regardless.
	awk -v p="$scratch/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	find "$scratch" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} + 2>/dev/null || true
}
# cleanup_cgroups: the suite's cgroupsPaths are "/cgrouptest" and
# "testdir/cgrouptest/container" (relative to the runtime's cgroup, the root
# on a host without systemd); runtimes remove only the leaf. rmdir never
# removes a cgroup that still has processes or children.
cleanup_cgroups() {
	local mnt own
	own=$(sed -n 's/^0::\///p' /proc/self/cgroup)
	# The fstype is the field after the "-" that ends the optional fields.
	awk '{ i = 7; while ($i != "-") i++; if ($(i + 1) ~ /^cgroup2?$/) print $5 }' /proc/self/mountinfo |
		while read -r mnt; do
			for base in "$mnt" ${own:+"$mnt/$own"}; do
				rmdir "$base/testdir/cgrouptest/container" "$base/testdir/cgrouptest" \
					"$base/testdir" "$base/cgrouptest" 2>/dev/null || true
			done
		done
}
trap 'cleanup_leftovers; cleanup_cgroups; rm -rf --one-file-system "$scratch" "$empty"' EXIT

# classify TAPFILE RC: print "result ok notok skip planned".
# A program passes when it exits 0, reports no "not ok", every TAP document it
# printed (some print two) has a plan matching its test lines (a crash
# mid-run leaves it short), and it printed no "error" diagnostic outside a
# test: the lifecycle programs (hooks, pidfile, poststart...) report their
# failures that way under a 1..0 plan. No output at all with exit 0 is a pass:
# the *_fail programs print nothing when the runtime rightly refuses.
classify() {
	local tap=$1 rc=$2
	awk -v rc="$rc" '
		function close_doc() {
			if (indoc && (!hasplan || plan != n)) badplan = 1
			n = 0; hasplan = 0
		}
		/^TAP version/ { close_doc(); indoc = 1; prev = "other"; next }
		/^  ---$/ && !inyaml { inyaml = 1; detached = (prev != "test"); next }
		/^  \.\.\.$/ && inyaml { inyaml = 0; prev = "other"; next }
		inyaml { if (detached && $0 ~ /^    "error":/) orphan = 1; next }
		/^ok [0-9]+/ {
			indoc = 1; n++; prev = "test"
			if ($0 ~ /# *[Ss][Kk][Ii][Pp]/) skip++; else ok++
			next
		}
		/^not ok [0-9]+/ {
			indoc = 1; n++; prev = "test"
			if ($0 ~ /# *[Tt][Oo][Dd][Oo]/) ok++; else bad++
			next
		}
		/^1\.\.[0-9]+/ { indoc = 1; split($0, a, /\.\./); plan = a[2] + 0; hasplan = 1; planned += plan }
		# Other lines continue a multi-line test description ("Refer to: ...")
		# and keep the next YAML block attached to that test.
		/^1\.\.|^#/ { prev = "other" }
		END {
			close_doc()
			if (rc == 124 || rc == 137) res = "timeout"
			else if (rc == 0 && bad == 0 && !badplan && !orphan) res = "pass"
			else res = "fail"
			printf "%s %d %d %d %d\n", res, ok, bad, skip, planned
		}' "$tap"
}

# failure_note NAME RESULT: a one-line hint of why a program did not pass:
# its first "not ok" with the stderr (else error) of that test's diagnostic;
# else its first out-of-test error; else the program's last stderr line.
failure_note() {
	local tap=$outdir/tap/$1.tap err=$outdir/tap/$1.err note
	case $2 in
	pass) return ;;
	timeout)
		echo "timed out after ${timeout_s}s"
		return
		;;
	esac
	note=$(awk '
		function val(line) { sub(/^ *"[a-z]+": *"/, "", line); sub(/\\n.*|",?$/, "", line); gsub(/\\"/, "\"", line); return line }
		!found && /^not ok/ { found = 1; what = $0; next }
		found && /^  \.\.\.$/ { exit }
		found && /^    "stderr":/ { why = val($0) }
		found && /^    "error":/ && err == "" { err = val($0) }
		!found && /^    "error":/ && orphan == "" { orphan = val($0) }
		END {
			if (found) printf "%s%s", what, (why != "" ? " -- " why : (err != "" ? " -- " err : ""))
			else printf "%s", orphan
		}' "$tap")
	# A bare "exit status N" says nothing: add the program's stderr.
	case $note in
	'' | *"exit status "[0-9]*)
		local last
		last=$(grep -v '^exit status\|^failed to\|^Refer to' "$err" | tail -n1 || true)
		[ -z "$last" ] || note="$note${note:+ -- }$last"
		;;
	esac
	# runc-style logs: keep the message only.
	printf '%s' "$note" | sed 's/time="[^"]*" level=[a-z]* msg=//' | tr '\t|' '  ' | cut -c1-200
}

version=$("$runtime" --version 2>/dev/null | head -n1 || true)
summary="$outdir/summary.tsv"
printf 'program\tresult\texit\tok\tnot_ok\tskip\tplanned\tseconds\texpected\tnote\n' >"$summary"

echo "conformance: $runtime (${version:-unknown version}), ${#programs[@]} programs, output in $outdir"
start=$(date +%s)
passed=0 failed=0 regressions=()
for p in "${programs[@]}"; do
	[ -x "$cache/validation/$p" ] || { echo "run.sh: no such program: $p" >&2; exit 2; }
	t0=$(date +%s%N)
	set +e
	# timeout signals its whole process group, so helpers such as the
	# `unshare ... sleep` of the ns tests die with the program. The private
	# mount namespace keeps mounts a runtime leaks into the caller's
	# namespace (runc 1.1 does, in linux_rootfs_propagation) off the host.
	# shellcheck disable=SC2016 # the inner script expands its own arguments
	(cd "$cache" && RUNTIME="$runtime" TMPDIR="$scratch" \
		timeout -k 5 "$timeout_s" unshare -m --propagation private /bin/sh -c '
			empty=$1 prog=$2
			shift 2
			for f in "$@"; do mount --bind "$empty" "$f" || exit 125; done
			exec "$prog"' mask "$empty" "./validation/$p" "${mask_files[@]}" \
		>"$outdir/tap/$p.tap" 2>"$outdir/tap/$p.err" </dev/null 8>&-)
	rc=$?
	set -e
	secs=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	cleanup_leftovers
	cleanup_cgroups
	read -r result ok bad skip planned <<<"$(classify "$outdir/tap/$p.tap" "$rc")"
	note=$(failure_note "$p" "$result")
	exp=no
	[ -n "${expected[$p]:-}" ] && exp=yes
	if [ "$result" = pass ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		[ "$exp" = yes ] && regressions+=("$p")
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$result" "$rc" "$ok" "$bad" "$skip" "$planned" "$secs" "$exp" "$note" >>"$summary"
	printf '  %-40s %-8s %5ss  (ok %s, not ok %s, skip %s)\n' "$p" "$result" "$secs" "$ok" "$bad" "$skip"
done
duration=$(($(date +%s) - start))

{
	echo "# runtime-tools validation: $(basename "$runtime")"
	echo
	echo "- runtime: \`$runtime\` (${version:-unknown version})"
	echo "- suite: github.com/opencontainers/runtime-tools $(basename "$cache")"
	echo "- host: $(uname -r), $(nproc) cores; date $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "- result: $passed of ${#programs[@]} programs passed, $failed failed; duration ${duration}s"
	echo "- expected-pass failures: ${#regressions[@]}${regressions:+ (${regressions[*]})}"
	echo
	echo "| program | result | exit | ok | not ok | skip | planned | seconds | expected | note |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	tail -n +2 "$summary" | awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }'
} >"$outdir/summary.md"

# Programs that pass but are not expected to: candidates for expected-pass.txt.
newly=$(awk -F'\t' 'NR > 1 && $2 == "pass" && $9 == "no" { print $1 }' "$summary" | tr '\n' ' ')
[ -z "$newly" ] || echo "conformance: passing but not in $(basename "$expected_file"): $newly"
echo "conformance: $(basename "$runtime"): $passed of ${#programs[@]} programs passed, $failed failed, in ${duration}s; report $outdir/summary.md"
if [ ${#regressions[@]} -gt 0 ]; then
	echo "conformance: FAIL: expected to pass but did not: ${regressions[*]}" >&2
	exit 1
fi
