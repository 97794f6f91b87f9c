#!/usr/bin/env bash
# Side-by-side load test: reverb-shard against the peer servers (sockudo, soketi) in one run.
#
# For every scenario and every server: start a fresh server pinned to one CPU (reverb-shard
# with --cores 1), wait for its port, run `reverb-shard bench <scenario> --json --server-pid
# PID` pinned to another CPU, stop the server with SIGTERM and wait for it. Then print a
# markdown table per scenario (figures, and reverb-shard ÷ each peer) to stdout and to a file.
#
# Installs nothing. The peers come from ../shared/peers (install-peers.sh, start-*.sh, apps
# app-id/app-key/app-secret); a peer that is not installed is skipped with a note. The only
# thing built is this repository's release binary (`cargo build --release`, skip with
# --no-build).
#
# usage: scripts/bench-compare.sh [options]
#   --quick                  smoke run: tiny sizes, a few seconds per scenario
#   --scenarios LIST         comma-separated, from: connect,fanout,fanout-max,whisper,presence,churn
#                            (default: all of them)
#   --servers LIST           comma-separated, from: reverb-shard,sockudo,soketi (default: all)
#   --out FILE               markdown output (default: benches/compare-<UTC date-time>.md)
#   --json-dir DIR           keep every run's JSON report and logs here (default: a temp dir,
#                            kept and named in the output)
#   --port N                 first port to use (default 7300; each run takes the next one)
#   --server-cpu N           CPU for the server (default 0)
#   --load-cpu N             CPU for the load tool (default 1)
#   --bin PATH               reverb-shard binary (default target/release/reverb-shard)
#   --no-build               do not run `cargo build --release` first
#   --peers-scripts DIR      the peer launchers (default ../shared/peers from the repo root,
#                            or $PEERS_SCRIPTS)
#   Scenario sizes (defaults in brackets; --quick sets smaller ones; explicit size flags win):
#   --connect-connections N [10000]  --connect-concurrency C [200]  --connect-hold S [10]
#   --fanout-subscribers N [1000]    --fanout-channels C [1] (also fanout-max)  --fanout-rate R [200]
#   --fanout-duration S [20]
#   --max-subscribers N [1000]       --max-publishers P [4]         --max-duration S [10]
#   --whisper-members M [100]        --whisper-channels C [10]      --whisper-rate R [1000]
#   --whisper-duration S [10]
#   --presence-members M [200]       --presence-channels C [10]     --presence-rate R [200]
#   --presence-duration S [10]
#   --churn-concurrency C [50]       --churn-duration S [10]
#
# Scenarios:
#   connect     open N idle connections and hold them: establish rate, server RSS per connection
#   fanout      N subscribers, events through the HTTP API at R/s: latency, deliveries per CPU-s
#   fanout-max  the same with --rate max (as fast as the server accepts, several publishers)
#   whisper     client events among members of private channels
#   presence    join/leave storm on presence channels
#   churn       connect -> subscribe -> disconnect cycles: cycles/s, RSS growth (leak check)
#
# Needs: bash, python3, taskset (util-linux), 2 CPUs; node for soketi.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ARGS_AS_GIVEN="$*"

# ---- defaults ---------------------------------------------------------------------------
SCENARIOS="connect,fanout,fanout-max,whisper,presence,churn"
SERVERS="reverb-shard,sockudo,soketi"
OUT=""
JSON_DIR=""
PORT_BASE=7300
SERVER_CPU=0
LOAD_CPU=1
BIN="$ROOT/target/release/reverb-shard"
BUILD=1
PEERS_SCRIPTS="${PEERS_SCRIPTS:-$ROOT/../shared/peers}"
QUICK=0

CONNECT_N=10000; CONNECT_CONC=200; CONNECT_HOLD=10
FANOUT_S=1000; FANOUT_C=1; FANOUT_R=200; FANOUT_D=20
MAX_S=1000; MAX_P=4; MAX_D=10
WHISPER_M=100; WHISPER_C=10; WHISPER_R=1000; WHISPER_D=10
PRESENCE_M=200; PRESENCE_C=10; PRESENCE_R=200; PRESENCE_D=10
CHURN_C=50; CHURN_D=10

APP_ID="app-id"; APP_KEY="app-key"; APP_SECRET="app-secret"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "bench-compare: $*" >&2; exit 2; }

# --quick first, so that explicit sizes given with it win wherever they stand.
for arg in "$@"; do
  if [ "$arg" = "--quick" ]; then
    QUICK=1
    CONNECT_N=500; CONNECT_CONC=50; CONNECT_HOLD=2
    FANOUT_S=100; FANOUT_R=50; FANOUT_D=3
    MAX_S=100; MAX_D=3
    WHISPER_M=20; WHISPER_C=4; WHISPER_R=100; WHISPER_D=3
    PRESENCE_M=20; PRESENCE_C=4; PRESENCE_R=50; PRESENCE_D=3
    CHURN_C=10; CHURN_D=3
  fi
done

while [ $# -gt 0 ]; do
  opt="$1"
  case "$opt" in
    -h|--help) usage; exit 0 ;;
    --quick) shift; continue ;;
    --no-build) BUILD=0; shift; continue ;;
  esac
  [ $# -ge 2 ] || die "$opt needs a value (see --help)"
  val="$2"
  case "$opt" in
    --scenarios) SCENARIOS="$val" ;;
    --servers) SERVERS="$val" ;;
    --out) OUT="$val" ;;
    --json-dir) JSON_DIR="$val" ;;
    --port) PORT_BASE="$val" ;;
    --server-cpu) SERVER_CPU="$val" ;;
    --load-cpu) LOAD_CPU="$val" ;;
    --bin) BIN="$val" ;;
    --peers-scripts) PEERS_SCRIPTS="$val" ;;
    --connect-connections) CONNECT_N="$val" ;;
    --connect-concurrency) CONNECT_CONC="$val" ;;
    --connect-hold) CONNECT_HOLD="$val" ;;
    --fanout-subscribers) FANOUT_S="$val" ;;
    --fanout-channels) FANOUT_C="$val" ;;
    --fanout-rate) FANOUT_R="$val" ;;
    --fanout-duration) FANOUT_D="$val" ;;
    --max-subscribers) MAX_S="$val" ;;
    --max-publishers) MAX_P="$val" ;;
    --max-duration) MAX_D="$val" ;;
    --whisper-members) WHISPER_M="$val" ;;
    --whisper-channels) WHISPER_C="$val" ;;
    --whisper-rate) WHISPER_R="$val" ;;
    --whisper-duration) WHISPER_D="$val" ;;
    --presence-members) PRESENCE_M="$val" ;;
    --presence-channels) PRESENCE_C="$val" ;;
    --presence-rate) PRESENCE_R="$val" ;;
    --presence-duration) PRESENCE_D="$val" ;;
    --churn-concurrency) CHURN_C="$val" ;;
    --churn-duration) CHURN_D="$val" ;;
    *) die "unknown option $opt (see --help)" ;;
  esac
  shift 2
done

PEERS_SCRIPTS="$(cd "$PEERS_SCRIPTS" 2>/dev/null && pwd || echo "$PEERS_SCRIPTS")"
for s in ${SCENARIOS//,/ }; do
  case "$s" in connect|fanout|fanout-max|whisper|presence|churn) ;; *) die "unknown scenario '$s'" ;; esac
done
for s in ${SERVERS//,/ }; do
  case "$s" in reverb-shard|sockudo|soketi) ;; *) die "unknown server '$s'" ;; esac
done
command -v python3 >/dev/null || die "python3 is needed to read the JSON reports"
command -v taskset >/dev/null || die "taskset (util-linux) is needed to pin the processes"
for cpu in "$SERVER_CPU" "$LOAD_CPU"; do
  taskset -c "$cpu" true 2>/dev/null || die "CPU $cpu is not available to this process"
done
[ "$SERVER_CPU" != "$LOAD_CPU" ] || echo "bench-compare: warning: server and load tool share CPU $SERVER_CPU" >&2

STAMP="$(date -u +%Y-%m-%d-%H%M%S)"
[ -n "$OUT" ] || OUT="$ROOT/benches/compare-$STAMP.md"
if [ -z "$JSON_DIR" ]; then JSON_DIR="$(mktemp -d "${TMPDIR:-/tmp}/bench-compare.XXXXXX")"; fi
mkdir -p "$JSON_DIR" "$(dirname "$OUT")"
MANIFEST="$JSON_DIR/manifest.tsv"
: > "$MANIFEST"

# Descriptors for many connections: every child (servers, load tool) inherits this.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ "$BUILD" = 1 ]; then
  echo "bench-compare: cargo build --release" >&2
  (cd "$ROOT" && cargo build --release --bin reverb-shard) >&2
fi
[ -x "$BIN" ] || die "no reverb-shard binary at $BIN (build it, or pass --bin)"

# ---- which servers can run --------------------------------------------------------------
PEERS_DIR="${PEERS_DIR:-$HOME/peers}"
RUN_SERVERS=()
NOTES=()
for s in ${SERVERS//,/ }; do
  case "$s" in
    reverb-shard) RUN_SERVERS+=("$s") ;;
    sockudo)
      if [ -x "$PEERS_SCRIPTS/start-sockudo.sh" ] && [ -x "$PEERS_DIR/sockudo/bin/sockudo" ]; then
        RUN_SERVERS+=("$s")
      else
        NOTES+=("sockudo skipped: not installed (expected $PEERS_DIR/sockudo/bin/sockudo and $PEERS_SCRIPTS/start-sockudo.sh; run $PEERS_SCRIPTS/install-peers.sh sockudo)")
      fi ;;
    soketi)
      if [ -x "$PEERS_SCRIPTS/start-soketi.sh" ] && [ -x "$PEERS_DIR/soketi/node_modules/.bin/soketi" ] && command -v node >/dev/null; then
        RUN_SERVERS+=("$s")
      else
        NOTES+=("soketi skipped: not installed (expected node, $PEERS_DIR/soketi/node_modules/.bin/soketi and $PEERS_SCRIPTS/start-soketi.sh; run $PEERS_SCRIPTS/install-peers.sh soketi)")
      fi ;;
  esac
done
for n in "${NOTES[@]+"${NOTES[@]}"}"; do echo "bench-compare: $n" >&2; done
[ "${#RUN_SERVERS[@]}" -gt 0 ] || die "no server to run"

# ---- one server -------------------------------------------------------------------------
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    sleep 1
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_server NAME PORT LOG: sets SERVER_PID; fails if the port does not open in 60 s.
start_server() {
  local name="$1" port="$2" log="$3"
  case "$name" in
    reverb-shard)
      local dir="$JSON_DIR/reverb-shard-$port"
      mkdir -p "$dir"
      cat > "$dir/config.toml" <<EOF
[server]
host = "127.0.0.1"
port = $port
pid_file = "$dir/reverb-shard.pid"

[[apps]]
app_id = "$APP_ID"
key = "$APP_KEY"
secret = "$APP_SECRET"
EOF
      # From an empty directory with a clean environment: no ./.env, no stray REVERB_*.
      (cd "$dir" && exec taskset -c "$SERVER_CPU" env -i PATH="$PATH" HOME="$HOME" \
        "$BIN" start --config "$dir/config.toml" --cores 1 --host 127.0.0.1 --port "$port") \
        >"$log" 2>&1 &
      ;;
    sockudo)
      PEER_USER_AUTH=false PEER_LOG=warn PEER_WORKER_THREADS=1 \
        taskset -c "$SERVER_CPU" "$PEERS_SCRIPTS/start-sockudo.sh" "$port" >"$log" 2>&1 &
      ;;
    soketi)
      PEER_USER_AUTH=false PEER_LOG=warn \
        taskset -c "$SERVER_CPU" "$PEERS_SCRIPTS/start-soketi.sh" "$port" >"$log" 2>&1 &
      ;;
  esac
  SERVER_PID=$!
  local waited=0
  until port_open "$port"; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "bench-compare: $name exited before listening on $port; its log:" >&2
      tail -n 20 "$log" >&2
      SERVER_PID=""
      return 1
    fi
    sleep 0.2
    waited=$((waited + 1))
    if [ "$waited" -ge 300 ]; then
      echo "bench-compare: $name did not open port $port in 60 s" >&2
      return 1
    fi
  done
  # Let start-up work (JIT, allocator warm-up, timers) settle before the RSS baseline.
  sleep 1
}

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  local waited=0
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    sleep 0.2
    waited=$((waited + 1))
    if [ "$waited" -ge 100 ]; then
      echo "bench-compare: server $SERVER_PID still running 20 s after SIGTERM: SIGKILL" >&2
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
  done
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# scenario_args NAME: the bench subcommand and its flags; sets DURATION (seconds, for the timeout).
scenario_args() {
  case "$1" in
    connect)
      ARGS=(connect --connections "$CONNECT_N" --concurrency "$CONNECT_CONC" --duration "$CONNECT_HOLD")
      # One source address stalls past ~14k connections (port reuse); spread above 10k.
      if [ "$CONNECT_N" -gt 10000 ]; then ARGS+=(--source-ips 4); fi
      DURATION="$CONNECT_HOLD" ;;
    fanout)
      ARGS=(fanout --subscribers "$FANOUT_S" --channels "$FANOUT_C" --rate "$FANOUT_R" --duration "$FANOUT_D")
      DURATION="$FANOUT_D" ;;
    fanout-max)
      ARGS=(fanout --subscribers "$MAX_S" --channels "$FANOUT_C" --rate max --publishers "$MAX_P" --duration "$MAX_D")
      DURATION="$MAX_D" ;;
    whisper)
      ARGS=(whisper --members "$WHISPER_M" --channels "$WHISPER_C" --rate "$WHISPER_R" --duration "$WHISPER_D")
      DURATION="$WHISPER_D" ;;
    presence)
      ARGS=(presence --members "$PRESENCE_M" --channels "$PRESENCE_C" --rate "$PRESENCE_R" --duration "$PRESENCE_D")
      DURATION="$PRESENCE_D" ;;
    churn)
      ARGS=(churn --concurrency "$CHURN_C" --duration "$CHURN_D")
      DURATION="$CHURN_D" ;;
  esac
}

# ---- the runs ---------------------------------------------------------------------------
PORT="$PORT_BASE"
for scenario in ${SCENARIOS//,/ }; do
  scenario_args "$scenario"
  for server in "${RUN_SERVERS[@]}"; do
    PORT=$((PORT + 1))
    tag="$scenario.$server"
    json="$JSON_DIR/$tag.json"
    echo "bench-compare: $scenario against $server (port $PORT)" >&2
    if ! start_server "$server" "$PORT" "$JSON_DIR/$tag.server.log"; then
      stop_server
      printf '%s\t%s\t%s\t%s\n' "$scenario" "$server" "server did not start" "$json" >> "$MANIFEST"
      continue
    fi
    cmd=(taskset -c "$LOAD_CPU" "$BIN" bench "${ARGS[@]}" --url "ws://127.0.0.1:$PORT"
      --app-id "$APP_ID" --key "$APP_KEY" --secret "$APP_SECRET" --cores 1 --json
      --server-pid "$SERVER_PID")
    echo "${cmd[*]}" > "$JSON_DIR/$tag.cmd"
    status="ok"
    rc=0
    # Bounded by the tool itself; the timeout only guards against a hang.
    timeout "$(( ${DURATION%.*} + 300 ))" "${cmd[@]}" >"$json" 2>"$JSON_DIR/$tag.bench.log" || rc=$?
    if [ "$rc" -ne 0 ]; then
      status="load tool exited with $rc"
      tail -n 5 "$JSON_DIR/$tag.bench.log" >&2
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then status="$status; server died during the run"; fi
    stop_server
    printf '%s\t%s\t%s\t%s\n' "$scenario" "$server" "$status" "$json" >> "$MANIFEST"
  done
done

# ---- the table --------------------------------------------------------------------------
MACHINE="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1), $(nproc) CPUs, $(uname -sr)"
REV="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(cd "$ROOT" && git status --porcelain 2>/dev/null | head -n1)" ]; then REV="$REV (with uncommitted changes)"; fi
LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"

SERVERS_RUN="${RUN_SERVERS[*]}" NOTES_TEXT="$(printf '%s\n' "${NOTES[@]+"${NOTES[@]}"}")" \
MACHINE="$MACHINE" REV="$REV" LOAD="$LOAD" STAMP="$(date -u '+%Y-%m-%d %H:%M:%S UTC')" \
QUICK="$QUICK" ARGS_AS_GIVEN="$ARGS_AS_GIVEN" SERVER_CPU="$SERVER_CPU" LOAD_CPU="$LOAD_CPU" \
JSON_DIR="$JSON_DIR" \
python3 - "$MANIFEST" > "$OUT" <<'PY'
import json, os, sys

manifest = sys.argv[1]
servers = os.environ["SERVERS_RUN"].split()
peers = [s for s in servers if s != "reverb-shard"]
runs = {}
order = []
for line in open(manifest):
    scenario, server, status, path = line.rstrip("\n").split("\t")
    if scenario not in order:
        order.append(scenario)
    report = None
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, ValueError):
        pass
    runs[(scenario, server)] = (status, report)

def get(report, path):
    value = report
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value

# (label, JSON path, which way is better: "+" higher, "-" lower, "" no ratio)
LATENCY = [
    ("latency p50 (µs)", "latency_us.p50", "-"),
    ("latency p90 (µs)", "latency_us.p90", "-"),
    ("latency p99 (µs)", "latency_us.p99", "-"),
    ("latency p99.9 (µs)", "latency_us.p99_9", "-"),
    ("latency max (µs)", "latency_us.max", "-"),
]
DELIVERY = [
    ("deliveries expected", "deliveries.expected", ""),
    ("deliveries", "deliveries.deliveries", ""),
    ("lost", "deliveries.lost", ""),
    ("duplicates", "deliveries.duplicates", ""),
    ("deliveries/s", "deliveries.per_s", "+"),
    ("deliveries per server CPU-second", "server.deliveries_per_cpu_s", "+"),
    ("server CPU-s per million deliveries", "server.cpu_s_per_million_deliveries", "-"),
    ("server CPU-s", "server.cpu_s", ""),
] + LATENCY + [
    ("server RSS at the end (KiB)", "server.rss_after_kib", "-"),
    ("failures", "failures.total", ""),
]
METRICS = {
    "connect": [
        ("connections attempted", "connections.attempted", ""),
        ("connections established", "connections.established", ""),
        ("establish rate (/s)", "connections.established_per_s", "+"),
        ("establish latency p50 (µs)", "establish_latency_us.p50", "-"),
        ("establish latency p99 (µs)", "establish_latency_us.p99", "-"),
        ("server RSS before (KiB)", "server.rss_before_kib", "-"),
        ("server RSS holding them (KiB)", "server.rss_held_kib", "-"),
        ("server RSS per idle connection (bytes)", "server.rss_per_connection_bytes", "-"),
        ("server CPU-s while connecting", "server.cpu_setup_s", "-"),
        ("server CPU-s while holding", "server.cpu_hold_s", "-"),
        ("failures", "failures.total", ""),
    ],
    "fanout": [
        ("subscribed", "connections.subscribed", ""),
        ("events published", "events.published", ""),
    ] + DELIVERY,
    "fanout-max": [
        ("subscribed", "connections.subscribed", ""),
        ("events published", "events.published", ""),
        ("events/s accepted", "events.per_s", "+"),
    ] + DELIVERY,
    "whisper": [
        ("members subscribed", "connections.subscribed", ""),
        ("client events sent", "events.sent", ""),
    ] + DELIVERY,
    "presence": [
        ("joins acknowledged", "joins.joins_ok", ""),
        ("joins/s", "joins.joins_per_s", "+"),
        ("member events/s", "member_events.per_s", "+"),
        ("member events per server CPU-second", "server.member_events_per_cpu_s", "+"),
        ("member_added missing", "member_events.missing_added", ""),
        ("member_added without member_removed", "member_events.unmatched_added", ""),
        ("member_removed without member_added", "member_events.unmatched_removed", ""),
    ] + LATENCY[:1] + LATENCY[2:3] + [
        ("failures", "failures.total", ""),
    ],
    "churn": [
        ("cycles", "cycles.cycles", ""),
        ("cycles failed", "cycles.failed", ""),
        ("cycles/s", "cycles.per_s", "+"),
        ("cycles per server CPU-second", "server.cycles_per_cpu_s", "+"),
        ("cycle p50 (µs)", "cycle_latency_us.p50", "-"),
        ("cycle p99 (µs)", "cycle_latency_us.p99", "-"),
        ("server RSS growth per 1000 cycles (KiB)", "server.rss_growth_per_1000_cycles_kib", "-"),
        ("failures", "failures.total", ""),
    ],
}
TITLES = {
    "connect": "connect: idle connections held",
    "fanout": "fanout: events through the HTTP API at a fixed rate",
    "fanout-max": "fanout at --rate max",
    "whisper": "whisper: client events on private channels",
    "presence": "presence: join/leave storm",
    "churn": "churn: connect -> subscribe -> disconnect",
}

def fmt(v):
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 1:
            return f"{v:,.2f}"
        return f"{v:.3g}"
    return str(v)

def ratio(a, b):
    # Only between two positive figures (an RSS growth may be negative, a CPU time 0).
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or a <= 0 or b <= 0:
        return "–"
    r = a / b
    return f"{r:.2f}×" if r >= 0.01 else f"{r:.1g}×"

out = []
w = out.append
w(f"# reverb-shard vs peers{' (--quick smoke run)' if os.environ['QUICK'] == '1' else ''}")
w("")
w(f"- date: {os.environ['STAMP']}")
w(f"- machine: {os.environ['MACHINE']}; load average at the end: {os.environ['LOAD']}")
w(f"- reverb-shard revision: {os.environ['REV']}")
w("- command: `" + ("scripts/bench-compare.sh " + os.environ["ARGS_AS_GIVEN"]).strip() + "`")
w(f"- servers pinned to CPU {os.environ['SERVER_CPU']} (reverb-shard `--cores 1`, sockudo 1 tokio worker, "
  f"soketi one Node process), one fresh server per scenario; load tool "
  f"`reverb-shard bench --cores 1` pinned to CPU {os.environ['LOAD_CPU']}")
w(f"- raw JSON reports, exact commands and logs: `{os.environ['JSON_DIR']}`")
for note in os.environ.get("NOTES_TEXT", "").splitlines():
    if note.strip():
        w(f"- note: {note}")
w("")
w("Ratios are reverb-shard ÷ peer (– where a figure is missing, zero or negative). Direction: "
  "↑ higher is better, ↓ lower is better. Server CPU time comes from /proc in 10 ms ticks, so "
  "short runs give coarse per-CPU-second figures.")

for scenario in order:
    w("")
    w(f"## {TITLES.get(scenario, scenario)}")
    w("")
    params = None
    for server in servers:
        status, report = runs.get((scenario, server), ("not run", None))
        if report is not None and params is None:
            params = report.get("parameters")
    if params:
        shown = {k: v for k, v in params.items() if k not in ("url", "urls", "app_id", "key", "server_pids", "api_url")}
        w("Parameters: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in shown.items()))
        w("")
    head = ["metric", ""] + servers + [f"÷ {p}" for p in peers]
    w("| " + " | ".join(head) + " |")
    w("|" + "|".join(["---"] + ["---"] + ["---:"] * (len(head) - 2)) + "|")
    for label, path, better in METRICS.get(scenario, []):
        values = [get(runs.get((scenario, s), ("", None))[1] or {}, path) for s in servers]
        if all(v is None for v in values):
            continue
        arrow = {"+": "↑", "-": "↓"}.get(better, "")
        row = [label, arrow] + [fmt(v) for v in values]
        ours = values[servers.index("reverb-shard")] if "reverb-shard" in servers else None
        for p in peers:
            row.append(ratio(ours, values[servers.index(p)]) if better else "")
        w("| " + " | ".join(row) + " |")
    problems = []
    for server in servers:
        status, report = runs.get((scenario, server), ("not run", None))
        if status != "ok" or report is None:
            problems.append(f"{server}: {status}{'' if report is not None else ' (no JSON report)'}")
        elif report.get("interrupted"):
            problems.append(f"{server}: run interrupted (partial figures)")
        if report is not None:
            causes = get(report, "failures.by_cause") or {}
            if causes:
                problems.append(f"{server}: failures " + ", ".join(f"{k}={v}" for k, v in causes.items()))
            for note in report.get("notes") or []:
                problems.append(f"{server}: {note}")
    for p in problems:
        w(f"- {p}")

# The issue's targets, where both sides were measured.
def best_peer(scenario, path, better):
    values = []
    for p in peers:
        report = runs.get((scenario, p), ("", None))[1]
        v = get(report or {}, path)
        if isinstance(v, (int, float)):
            values.append((v, p))
    if not values:
        return None
    return max(values) if better == "+" else min(values)

targets = []
for scenario in ("fanout-max", "fanout"):
    ours = get(runs.get((scenario, "reverb-shard"), ("", None))[1] or {}, "server.deliveries_per_cpu_s")
    peer = best_peer(scenario, "server.deliveries_per_cpu_s", "+")
    if isinstance(ours, (int, float)) and peer:
        met = ours >= 2 * peer[0]
        targets.append(f"| deliveries per server CPU-second ({scenario}) ≥ 2× the better peer | {fmt(ours)} vs {fmt(peer[0])} ({peer[1]}) = {ours / peer[0]:.2f}× | {'met' if met else 'missed'} |")
ours = get(runs.get(("connect", "reverb-shard"), ("", None))[1] or {}, "server.rss_per_connection_bytes")
peer = best_peer("connect", "server.rss_per_connection_bytes", "-")
if isinstance(ours, (int, float)) and peer and peer[0] > 0:
    met = ours <= peer[0] / 2
    targets.append(f"| server RSS per idle connection ≤ ½ the better peer's | {fmt(ours)} B vs {fmt(peer[0])} B ({peer[1]}) = {ours / peer[0]:.2f}× | {'met' if met else 'missed'} |")
ours = get(runs.get(("fanout", "reverb-shard"), ("", None))[1] or {}, "latency_us.p99")
peer = best_peer("fanout", "latency_us.p50", "-")
if isinstance(ours, (int, float)) and peer:
    met = ours <= peer[0]
    targets.append(f"| fanout latency p99 ≤ the better peer's p50 | p99 {fmt(ours)} µs vs p50 {fmt(peer[0])} µs ({peer[1]}) | {'met' if met else 'missed'} |")
if targets:
    w("")
    w("## Targets (issue 5), as measured in this run")
    w("")
    w("| target | measured | |")
    w("|---|---|---|")
    out.extend(targets)
    if os.environ["QUICK"] == "1":
        w("")
        w("A --quick run is a smoke check: its sizes are far below the targets' (1,000 subscribers × 200 events/s).")

print("\n".join(out))
PY
cat "$OUT"
echo "bench-compare: wrote $OUT (raw reports in $JSON_DIR)" >&2
