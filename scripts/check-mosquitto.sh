#!/usr/bin/env bash
# A client nobody here wrote (Debian's mosquitto-clients) against `jitr local`: first connect dropped
# (just-in-time registration), then accepted; another device's topic refused. Run by CI after npm test.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v mosquitto_pub >/dev/null || { echo "check-mosquitto: mosquitto_pub not installed" >&2; exit 1; }

DATA=$(mktemp -d)
LOG="$DATA/local.log"
node bin/jitr.js local --data "$DATA" --aws-port 0 --admin-port 0 --mqtt-port 0 >"$LOG" 2>&1 &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 1 100); do grep -q "jitr local ready" "$LOG" && break; sleep 0.2; done
grep -q "jitr local ready" "$LOG" || { cat "$LOG"; echo "check-mosquitto: jitr local did not start" >&2; exit 1; }

field() { node -e "process.stdout.write(String(require('$DATA/endpoints.json')['$1']))"; }
export AWS_ENDPOINT_URL=$(field awsEndpoint) AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=$(field region)
HOST=$(field mqttHost); PORT=$(field mqttPort); CAFILE=$(field gatewayCaFile)
jitr() { node bin/jitr.js "$@"; }

jitr ca create --out "$DATA/ca" >/dev/null
jitr ca register --ca "$DATA/ca" >/dev/null
jitr device create --ca "$DATA/ca" --id mq-1 --out "$DATA/devices" >/dev/null
jitr allowlist put mq-1 --status allowed --data "$DATA" >/dev/null
jitr mappings put default --template sensor --data "$DATA" >/dev/null

TLS=(-h "$HOST" -p "$PORT" --cafile "$CAFILE" --cert "$DATA/devices/mq-1.cert.pem" --key "$DATA/devices/mq-1.key.pem" -i mq-1)
if mosquitto_pub "${TLS[@]}" -t devices/mq-1/telemetry -m first -q 1 2>/dev/null; then
  echo "check-mosquitto: the first connection of a new certificate was not dropped" >&2; exit 1
fi
echo "first connection dropped (just-in-time registration)"
ok=""
for _ in $(seq 1 40); do
  if mosquitto_pub "${TLS[@]}" -t devices/mq-1/telemetry -m '{"t":21.5}' -q 1 2>/dev/null; then ok=1; break; fi
  sleep 0.25
done
[ -n "$ok" ] || { echo "check-mosquitto: never got in after provisioning" >&2; exit 1; }
echo "published on its own topic once provisioned"
if mosquitto_pub "${TLS[@]}" -t devices/someone-else/telemetry -m x -q 1 2>/dev/null; then
  echo "check-mosquitto: publishing on another device's topic was accepted" >&2; exit 1
fi
echo "publishing on another device's topic refused"
set +e
foreign_output=$(mosquitto_sub "${TLS[@]}" -t devices/someone-else/commands -C 1 -W 3 2>&1)
mosquitto_sub "${TLS[@]}" -t devices/mq-1/commands -C 1 -W 2 >/dev/null 2>&1; own=$?
set -e
# 27 is mosquitto_sub's timeout: connected, subscribed, no message within -W seconds.
[ "$own" -eq 27 ] || { echo "check-mosquitto: subscribing to its own commands failed ($own)" >&2; exit 1; }
# mosquitto_sub reports a SUBACK failure code as "All subscription requests were denied."
case "$foreign_output" in
  *denied*) ;;
  *) echo "check-mosquitto: subscribing to another device's commands was granted ($foreign_output)" >&2; exit 1 ;;
esac
echo "subscribing: own commands granted, another device's refused"
echo "check-mosquitto: ok"
