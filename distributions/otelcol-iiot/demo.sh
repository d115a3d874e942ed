#!/usr/bin/env bash
# make demo: start our device simulators on loopback, run the edge collector against them and show the data
# flowing (readings, device health, poll-latency quantiles, poll traces). DEMO_SECONDS=0 runs until Ctrl-C.
# The demo tells the truth: it starts the collector only once every simulator answers, keeps every log in a
# directory it names, and exits non-zero if a device never answered a poll.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build="$root/_build"
seconds=${DEMO_SECONDS:-30}
logs="$build/demo/$(date +%Y%m%dT%H%M%S)"
mkdir -p "$logs"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# building runs in the background with a heartbeat: a cold build of the collector takes minutes.
build_with_progress() {
  local what=$1; shift
  local start=$SECONDS
  "$@" >"$logs/build-$what.log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    kill -0 "$pid" 2>/dev/null && printf '   ... building %s: %ds\n' "$what" $((SECONDS - start))
  done
  if ! wait "$pid"; then
    echo "!! building $what failed; see $logs/build-$what.log" >&2
    tail -20 "$logs/build-$what.log" >&2
    exit 1
  fi
  printf '   built %s in %ds\n' "$what" $((SECONDS - start))
}

echo "== logs of this run: $logs"
echo "== building the collector (first build: 5-45 minutes depending on the machine; later builds: under a minute)"
build_with_progress otelcol-iiot make -C "$root" --no-print-directory build
echo "== building the simulators"
for sim in modbussim dlt645sim opcuasim; do
  build_with_progress "$sim" env CGO_ENABLED=0 go build -C "$root" -o "$build/$sim" "./cmd/$sim"
done

export DEMO_MODBUS_PORT=$(freeport) DEMO_DLT645_PORT=$(freeport) DEMO_OPCUA_PORT=$(freeport)
export DEMO_PROMETHEUS_PORT=$(freeport) DEMO_TELEMETRY_PORT=$(freeport)
export DEMO_PROFILES="$root/distributions/otelcol-iiot/profiles" DEMO_WORK="$logs"

echo "== starting simulators: Modbus/TCP on :$DEMO_MODBUS_PORT (SDM630 unit 1, SunSpec inverter unit 2, DTSU666 unit 3),"
echo "   DL/T 645 TCP serial server on :$DEMO_DLT645_PORT (meters 000000000001..3), OPC UA server on :$DEMO_OPCUA_PORT"
"$build/modbussim" -tcp "127.0.0.1:$DEMO_MODBUS_PORT" -day 2m >"$logs/modbussim.log" 2>&1 & pids+=($!)
"$build/dlt645sim" -listen "127.0.0.1:$DEMO_DLT645_PORT" >"$logs/dlt645sim.log" 2>&1 & pids+=($!)
"$build/opcuasim" -listen "127.0.0.1:$DEMO_OPCUA_PORT" >"$logs/opcuasim.log" 2>&1 & pids+=($!)

# answers: the simulator accepts connections on its port (each listens only once it serves requests).
wait_for() {
  local name=$1 port=$2 log=$3
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "   $name answers on :$port"
      return 0
    fi
    sleep 0.2
  done
  echo "!! $name did not start within 30 s; its log ($log):" >&2
  tail -20 "$log" >&2
  exit 1
}
wait_for "Modbus simulator" "$DEMO_MODBUS_PORT" "$logs/modbussim.log"
wait_for "DL/T 645 simulator" "$DEMO_DLT645_PORT" "$logs/dlt645sim.log"
wait_for "OPC UA simulator" "$DEMO_OPCUA_PORT" "$logs/opcuasim.log"

echo "== starting otelcol-iiot with distributions/otelcol-iiot/demo.yaml"
"$build/otelcol-iiot" --config="$root/distributions/otelcol-iiot/demo.yaml" >"$logs/collector.log" 2>&1 & pids+=($!)
collector=${pids[-1]}
echo "   device data:            http://127.0.0.1:$DEMO_PROMETHEUS_PORT/metrics (Prometheus exposition)"
echo "   the collector's own:    http://127.0.0.1:$DEMO_TELEMETRY_PORT/metrics"
echo "   poll traces:            $logs/traces.jsonl (OTLP JSON, one line per batch)"
echo
echo "   legend: iiot_device_up 1 = the device answered its last poll, 0 = it did not;"
echo "   iiot_device_breaker_state 0 closed, 1 half-open, 2 open (polls paused);"
echo "   iiot_device_poll_duration_p99_seconds = P99 poll time per protocol over 30 s (tdigest);"
echo "   iiot_device_poll_errors_total{error_type} = failed requests and readings by cause."

declare -A ever_up=()
# show prints chosen series as "metric{device_id,phase,...} value", dropping the labels every series has,
# and remembers which devices have answered at least once.
show() {
  local body
  body=$(curl -sf "http://127.0.0.1:$DEMO_PROMETHEUS_PORT/metrics" || true)
  printf '%s\n' "$body" >"$logs/metrics.txt"
  while read -r id up; do
    [ -n "$id" ] || continue
    if [ "$up" = 1 ]; then ever_up[$id]=1; elif [ -z "${ever_up[$id]+x}" ]; then ever_up[$id]=0; fi
  done < <(grep -E '^iiot_device_up\{' <<<"$body" | sed -E 's/.*device_id="([^"]*)".*\} ([0-9.e+-]+).*/\1 \2/')
  echo
  echo "== $(date +%T)  $(grep -vc '^#' <<<"$body" || true) series exported; poll spans so far: $(grep -o '"name":"[a-z0-9]*\.poll"' "$DEMO_WORK/traces.jsonl" 2>/dev/null | sort | uniq -c | awk '{printf "%s %s  ", $2, $1}' | tr -d '"' | sed 's/name://g')"
  # Electrical readings share one vocabulary (internal/device/README.md): phase A voltage, total active
  # power and the imported energy (total register) of every meter and inverter, whatever the protocol.
  grep -E '^(iiot_device_up|iiot_device_poll_duration_p99_seconds|iiot_device_breaker_state|electrical_voltage_volts|electrical_power_active_watts|electrical_energy_active_watt_hours_total|inverter_dc_voltage_volts|dlt645_meter_clock_drift_seconds|opcua_line_[a-z_]+|iiot_device_poll_errors_total)\{' <<<"$body" |
    grep -vE 'phase="(B|C|AB|BC|CA|N)"|tariff="[0-9]+"|direction="export"' |
    awk '{
      split($0, a, "{"); name=a[1]; rest=substr($0, length(name)+2); labels=substr(rest, 1, index(rest, "}")-1); value=$NF
      n=split(labels, kv, ","); keep=""
      for (i=1; i<=n; i++) if (kv[i] ~ /^(device_id|device_protocol|phase|tariff|direction|error_type)=/) keep=keep (keep==""?"":",") kv[i]
      printf "   %-42s %-58s %s\n", name, "{" keep "}", value
    }' | sort || true
}

deadline=$((SECONDS + seconds))
sleep 8
while :; do
  if ! kill -0 "$collector" 2>/dev/null; then
    echo "!! the collector exited; its log: $logs/collector.log" >&2
    tail -20 "$logs/collector.log" >&2
    exit 1
  fi
  show
  if [ "$seconds" != 0 ] && [ $SECONDS -ge $deadline ]; then break; fi
  sleep 10
done

echo
echo "== labels per series in the last page (kept in $logs/metrics.txt):"
python3 "$root/distributions/otelcol-iiot/demo.labels.py" "$logs/metrics.txt" || true

errors=$(grep -cE '"level":"error"|	error	' "$logs/collector.log" || true)
warnings=$(grep -cE '"level":"warn"|	warn	' "$logs/collector.log" || true)
never=()
for id in "${!ever_up[@]}"; do [ "${ever_up[$id]}" = 1 ] || never+=("$id"); done
echo
echo "== demo over: ${#ever_up[@]} devices, ${#never[@]} never answered; collector log: $errors errors, $warnings warnings"
echo "   logs kept in $logs"
if [ ${#ever_up[@]} -eq 0 ]; then
  echo "!! no device health was exported at all: see $logs/collector.log" >&2
  exit 1
fi
if [ ${#never[@]} -gt 0 ]; then
  echo "!! never answered: ${never[*]} (see $logs/collector.log)" >&2
  exit 1
fi
