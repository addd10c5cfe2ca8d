#!/usr/bin/env bash
# bench.sh measures filesession's count, ls --json, reap and verify on
# directories of N session files, next to the find commands an operator
# would otherwise use, on the same files in the same run:
#
#   find DIR -name 'sess_*.json' | wc -l                  (what count replaces)
#   find DIR -name 'sess_*.json' -mmin +1440 -delete      (what reap replaces)
#
# and, for context, find DIR -name 'sess_*.json' -mmin -1440 | wc -l: a
# count of live files by find's rule, which (like count, and unlike the
# plain find, which reads names only) has to stat every file; count needs
# that stat because a session's expiry hint is its file's access time.
#
# Usage: cmd/filesession/bench.sh [N...]      (default: 100000)
#        BENCH_DIR=/var/tmp/bench cmd/filesession/bench.sh 100000 1000000
#
# The files are written by cmd/filesession/internal/mkbench, directly (not
# through the store, whose fsyncs would make a million files take hours) but
# byte for byte in the store's format and with its file times, which
# mkbench checks against the real store first. 10% of the sessions are
# expired (last seen 25-48h ago with a 24h idle timeout), so find's
# -mmin +1440 matches exactly the sessions reap removes; the live ones were
# seen within 12 hours. Every run works on the page cache (one warm-up run
# first), which is the state of a directory an application is using.
#
# Wall time comes from hyperfine (apt-get install hyperfine) when it is
# installed, else from GNU time; peak RSS from /usr/bin/time -v (apt-get
# install time). Results go to stdout and to $BENCH_DIR/results-N.md.
#
# Targets (issue 5): count and reap within 1.2x of the find commands, peak
# RSS at most 32 MiB at 1,000,000 files, for every command.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

sizes=("$@")
if [ ${#sizes[@]} -eq 0 ]; then
	sizes=(100000)
fi
work=${BENCH_DIR:-$(mktemp -d /var/tmp/filesession-bench.XXXXXX)}
mkdir -p "$work"
runs=${BENCH_RUNS:-5}

if [ ! -x /usr/bin/time ]; then
	echo "bench.sh: /usr/bin/time is missing (apt-get install time)" >&2
	exit 1
fi
have_hyperfine=false
if command -v hyperfine >/dev/null 2>&1; then
	have_hyperfine=true
fi

echo "==> building"
go build -o "$work/filesession" ./cmd/filesession
go build -o "$work/mkbench" ./cmd/filesession/internal/mkbench
fs=$work/filesession
mk=$work/mkbench
echo "go: $(go version)  cpus: $(nproc)  kernel: $(uname -r)"
echo "filesystem of $work: $(df -T "$work" | awk 'NR==2 {print $2}')"

# timeit NAME PREPARE COMMAND... : wall time of COMMAND (mean of $runs),
# after PREPARE (a shell command, run before every run; ":" for none).
timeit() {
	local name=$1 prepare=$2
	shift 2
	if $have_hyperfine; then
		hyperfine --style basic --warmup 1 --runs "$runs" --prepare "$prepare" \
			--export-json "$work/hf.json" -n "$name" "$*" >/dev/null
		python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.3f %.3f" % (r["mean"], r["stddev"]))' "$work/hf.json"
	else
		local total=0 t
		for _ in $(seq "$runs"); do
			bash -c "$prepare"
			t=$( { /usr/bin/time -f %e bash -c "$*" >/dev/null 2>/dev/null; } 2>&1 | tail -1)
			total=$(python3 -c "print($total + $t)")
		done
		python3 -c "print('%.3f 0' % ($total / $runs))"
	fi
}

# usage PREPARE COMMAND... : peak resident set size of COMMAND in KiB, and
# the CPU time (user + system) it took in seconds, from one more run. CPU
# time is the fairer comparison on a machine that other work keeps busy,
# where wall time mostly measures waiting for a CPU.
usage() {
	local prepare=$1
	shift
	bash -c "$prepare"
	/usr/bin/time -f '%M %U %S' bash -c "exec $* >/dev/null" 2>&1 >/dev/null | tail -1 |
		awk '{printf "%d %.3f\n", $1, $2 + $3}'
}

for n in "${sizes[@]}"; do
	dir=$work/sessions-$n
	out=$work/results-$n.md
	echo
	echo "==> $n session files in $dir"
	if [ ! -d "$dir" ]; then
		"$mk" -dir "$dir" -n "$n" -expired 0.1
	else
		"$mk" -dir "$dir" -n "$n" -expired 0.1 -only-expired
	fi
	restore="$mk -dir $dir -n $n -expired 0.1 -only-expired >/dev/null"

	declare -A mean sd rss cpu
	row() { # key name prepare command
		local key=$1 name=$2 prepare=$3
		shift 3
		read -r mean[$key] sd[$key] < <(timeit "$name" "$prepare" "$@")
		read -r rss[$key] cpu[$key] < <(usage "$prepare" "$@")
		printf '  %-30s %8.3f s ± %.3f   cpu %7.3f s   peak RSS %6d KiB\n' "$name" "${mean[$key]}" "${sd[$key]}" "${cpu[$key]}" "${rss[$key]}"
	}
	row find_count "find -name | wc -l" : "find $dir -name 'sess_*.json' | wc -l"
	row find_stat "find -mmin -1440 | wc -l" : "find $dir -name 'sess_*.json' -mmin -1440 | wc -l"
	row count "filesession count" : "$fs count --quiet --dir $dir"
	row ls "filesession ls --json" : "$fs ls --json --quiet --dir $dir"
	row verify "filesession verify" : "$fs verify --quiet --dir $dir"
	row find_reap "find -mmin +1440 -delete" "$restore" "find $dir -name 'sess_*.json' -mmin +1440 -delete"
	row reap "filesession reap" "$restore" "$fs reap --quiet --dir $dir"
	bash -c "$restore"

	ratio() { python3 -c "print('%.2f' % (${mean[$1]} / ${mean[$2]}))"; }
	cratio() { python3 -c "print('%.2f' % (${cpu[$1]} / max(${cpu[$2]}, 0.001)))"; }
	line() { # key label base
		printf '| %s | %.3f ± %.3f | %s | %.3f | %s | %.1f |\n' "$2" "${mean[$1]}" "${sd[$1]}" "$(ratio "$1" "$3")" \
			"${cpu[$1]}" "$(cratio "$1" "$3")" "$(python3 -c "print(${rss[$1]}/1024)")"
	}
	{
		echo "### $n session files ($(nproc) CPUs, $(df -T "$work" | awk 'NR==2 {print $2}'), warm page cache, wall time mean of $runs runs)"
		echo
		echo "| command | wall time (s) | vs find | CPU time (s) | vs find | peak RSS (MiB) |"
		echo "|---|---|---|---|---|---|"
		line find_count '`find -name \| wc -l`' find_count
		line find_stat '`find -mmin -1440 \| wc -l`' find_count
		line count '`filesession count`' find_count
		line ls '`filesession ls --json`' find_count
		line verify '`filesession verify`' find_count
		line find_reap '`find -mmin +1440 -delete`' find_reap
		line reap '`filesession reap`' find_reap
		echo
		echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	} | tee "$out"
	unset mean sd rss cpu
done
echo
echo "results in $work (remove it when done: rm -rf $work)"
