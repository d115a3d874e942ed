#!/usr/bin/env bash
# make demo: start our device simulators on loopback, run the edge collector against them and show the data
# flowing (readings, device health, poll-latency quantiles, poll traces). DEMO_SECONDS=0 runs until Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build="$root/_build"
seconds=${DEMO_SECONDS:-30}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

echo "== building simulators"
for sim in modbussim dlt645sim opcuasim; do
  CGO_ENABLED=0 go build -C "$root" -o "$build/$sim" "./cmd/$sim"
done

export DEMO_MODBUS_PORT=$(freeport) DEMO_DLT645_PORT=$(freeport) DEMO_OPCUA_PORT=$(freeport) DEMO_PROMETHEUS_PORT=$(freeport)
export DEMO_PROFILES="$root/distributions/otelcol-iiot/profiles" DEMO_WORK="$work"

echo "== starting simulators: Modbus/TCP on :$DEMO_MODBUS_PORT (SDM630 unit 1, SunSpec inverter unit 2, DTSU666 unit 3),"
echo "   DL/T 645 TCP serial server on :$DEMO_DLT645_PORT (meters 000000000001..3), OPC UA server on :$DEMO_OPCUA_PORT"
"$build/modbussim" -tcp "127.0.0.1:$DEMO_MODBUS_PORT" -day 2m >"$work/modbussim.log" 2>&1 & pids+=($!)
"$build/dlt645sim" -listen "127.0.0.1:$DEMO_DLT645_PORT" >"$work/dlt645sim.log" 2>&1 & pids+=($!)
"$build/opcuasim" -listen "127.0.0.1:$DEMO_OPCUA_PORT" >"$work/opcuasim.log" 2>&1 & pids+=($!)

echo "== starting otelcol-iiot with distributions/otelcol-iiot/demo.yaml"
"$build/otelcol-iiot" --config="$root/distributions/otelcol-iiot/demo.yaml" >"$work/collector.log" 2>&1 & pids+=($!)

# show prints chosen series as "metric{device_id,phase,...} value", dropping the labels every series has.
show() {
  local body
  body=$(curl -sf "http://127.0.0.1:$DEMO_PROMETHEUS_PORT/metrics" || true)
  echo
  echo "== $(date +%T)  $(grep -vc '^#' <<<"$body") series exported; poll spans so far: $(grep -o '"name":"[a-z0-9]*\.poll"' "$DEMO_WORK/traces.jsonl" 2>/dev/null | sort | uniq -c | awk '{printf "%s %s  ", $2, $1}' | tr -d '"' | sed 's/name://g')"
  grep -E '^(iiot_device_up|iiot_device_poll_duration_p99_seconds|iiot_device_breaker_state|meter_power_active_total_watts|meter_energy_active_import_kWh_total|inverter_ac_power_active_watts|inverter_dc_voltage_volts|dlt645_energy_active_kWh_total|dlt645_voltage_volts|dlt645_meter_clock_drift_seconds|opcua_line_[a-z_]+|iiot_device_poll_errors_total)\{' <<<"$body" |
    awk '{
      split($0, a, "{"); name=a[1]; rest=substr($0, length(name)+2); labels=substr(rest, 1, index(rest, "}")-1); value=$NF
      n=split(labels, kv, ","); keep=""
      for (i=1; i<=n; i++) if (kv[i] ~ /^(device_id|device_protocol|phase|tariff|direction|error_type)=/) keep=keep (keep==""?"":",") kv[i]
      printf "   %-42s %-58s %s\n", name, "{" keep "}", value
    }' | sort
}

deadline=$((SECONDS + seconds))
sleep 8
while :; do
  show
  if [ "$seconds" != 0 ] && [ $SECONDS -ge $deadline ]; then break; fi
  sleep 10
done
echo
echo "== demo over (collector log: $(grep -c . "$work/collector.log") lines, errors: $(grep -c '"level":"error"\|\terror\t' "$work/collector.log" || true))"
