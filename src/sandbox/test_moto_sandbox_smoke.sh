#!/usr/bin/env bash
# Manual smoke test of the keydeck sandbox (needs python3 with requirements.txt, aws CLI).
#   bash src/sandbox/test_moto_sandbox_smoke.sh
# Starts the sandbox with a stdin pipe, checks IAM enforcement, back-dating, the stats
# endpoint and the CloudTrail recorder, then closes the pipe and checks the sandbox went away.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
data="$(mktemp -d)/sb"
fails=0
ok()  { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

coproc SB { exec python3 "$here/moto_sandbox.py" --estate "$root/assets/estate.toml" --data-dir "$data" --port 0; }
sb_pid=$SB_PID
t0=$(date +%s.%N)
read -r -t 30 ready <&"${SB[0]}" || { echo "no ready line"; exit 1; }
echo "ready after $(python3 -c "print(round($(date +%s.%N) - $t0, 2))") s"
case "$ready" in '{"ready":true'*) ;; *) echo "not ready: $ready"; exit 1;; esac
j() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$data/sandbox.json" "$1"; }
ep=$(j 'd["endpoint"]')
as() {  # as OPERATOR aws-args...
  local who=$1; shift
  AWS_ACCESS_KEY_ID=$(j "d['operators']['$who']['access_key_id']") \
  AWS_SECRET_ACCESS_KEY=$(j "d['operators']['$who']['secret_access_key']") \
  AWS_MAX_ATTEMPTS=1 aws --endpoint-url "$ep" --region eu-north-1 "$@" 2>&1
}
days_ago() { python3 -c "import time,sys; print(round((time.time() - float(sys.argv[1])) / 86400))" "$1"; }

for who in key-admin security-lead outsider; do
  arn=$(as "$who" sts get-caller-identity --query Arn --output text)
  [ "$arn" = "arn:aws:iam::123456789012:user/$who" ] && ok "identity $who" || bad "identity $who: $arn"
done
as key-admin kms list-aliases --output text | grep -q alias/drop-kyc-key && ok "key-admin lists aliases" || bad "list-aliases"
as outsider kms list-keys | grep -q AccessDeniedException && ok "outsider denied" || bad "outsider not denied"
AWS_ACCESS_KEY_ID=$(j "d['operators']['key-admin']['access_key_id']") AWS_SECRET_ACCESS_KEY=wrong \
  aws --endpoint-url "$ep" --region eu-north-1 kms list-keys 2>&1 | grep -q InvalidSignatureException \
  && ok "wrong secret refused" || bad "wrong secret"
curl -s -X POST "$ep/" -H 'X-Amz-Target: TrentService.ListKeys' -H 'Content-Type: application/x-amz-json-1.1' -d '{}' \
  | grep -q MissingAuthenticationTokenException && ok "unsigned refused" || bad "unsigned"
kyc=$(as key-admin kms describe-key --key-id alias/drop-kyc-key --query KeyMetadata.KeyId --output text)
[ "$(days_ago "$(as key-admin kms describe-key --key-id "$kyc" --query KeyMetadata.CreationDate --output text)")" = 800 ] \
  && ok "kyc key created 800 days ago" || bad "kyc CreationDate"
[ "$(days_ago "$(as key-admin kms list-key-rotations --key-id "$kyc" --query 'Rotations[0].RotationDate' --output text)")" = 368 ] \
  && ok "kyc key rotated 368 days ago" || bad "kyc rotation"
del=$(as key-admin kms describe-key --key-id alias/drop-jwt-private-key --query KeyMetadata.DeletionDate --output text)
[ "$(days_ago "$del")" = -18 ] && ok "jwt key deleted in 18 days" || bad "DeletionDate $del"
[ "$(days_ago "$(as key-admin secretsmanager describe-secret --secret-id JWT_SECRET --query LastRotatedDate --output text)")" = 95 ] \
  && ok "JWT_SECRET rotated 95 days ago" || bad "JWT_SECRET LastRotatedDate"
[ "$(as key-admin secretsmanager describe-secret --secret-id JWT_SECRET --query RotationEnabled --output text)" = True ] \
  && ok "JWT_SECRET rotation on" || bad "JWT_SECRET RotationEnabled"
as key-admin kms rotate-key-on-demand --key-id "$kyc" | grep -q AccessDeniedException && ok "key-admin cannot rotate" || bad "key-admin rotated"
as key-admin kms schedule-key-deletion --key-id "$kyc" | grep -q AccessDeniedException && ok "key-admin cannot delete" || bad "key-admin deleted"
as security-lead kms rotate-key-on-demand --key-id "$kyc" | grep -q '"KeyId"' && ok "security-lead rotates" || bad "security-lead rotate"
total=$(curl -s "$ep/_sandbox/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['total'])")
[ "$total" -ge 15 ] && ok "stats total=$total" || bad "stats total=$total"
curl -s -X POST "$ep/_sandbox/stats/reset" >/dev/null
total=$(curl -s "$ep/_sandbox/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['total'])")
[ "$total" = 0 ] && ok "stats reset" || bad "stats reset: $total"

# CloudTrail: calls are recorded and LookupEvents answers (trail delay 0 here).
trail="$data/cloudtrail.jsonl"
as key-admin cloudtrail lookup-events --lookup-attributes AttributeKey=Username,AttributeValue=security-lead \
  --max-results 5 --no-paginate --query 'Events[0].EventName' --output text | grep -q RotateKeyOnDemand \
  && ok "lookup-events finds security-lead's rotation" || bad "lookup-events by Username"
as outsider cloudtrail lookup-events --max-results 1 --no-paginate | grep -q AccessDeniedException \
  && ok "outsider may not look up events" || bad "outsider lookup-events not denied"
grep -q '"eventName":"LookupEvents","awsRegion":"eu-north-1"' "$trail" && grep -q '"errorCode":"AccessDenied"' "$trail" \
  && ok "the refused lookup is recorded" || bad "refused lookup not recorded"
value="smoke-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
as security-lead secretsmanager put-secret-value --secret-id BANKID_CLIENT_SECRET --secret-string "$value" >/dev/null
b64=$(printf %s "$value" | base64)
grep -q '"eventName":"PutSecretValue"' "$trail" && ! grep -q -e "$value" -e "$b64" "$trail" \
  && ok "PutSecretValue recorded without its value" || bad "secret value in $trail"
[ "$(stat -c %a "$trail")" = 600 ] && ok "trail file is 0600" || bad "trail file mode $(stat -c %a "$trail")"
curl -s -X POST "$ep/_sandbox/trail-delay" -d '{"seconds": 2, "region": "us-west-2"}' | grep -q '"us-west-2": 2' \
  && ok "trail-delay per region" || bad "trail-delay endpoint"

eval "exec ${SB[1]}>&-"  # close the sandbox's stdin: it must exit by itself
for _ in $(seq 1 50); do kill -0 "$sb_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$sb_pid" 2>/dev/null; then bad "sandbox still running after stdin EOF"; kill "$sb_pid"; else ok "exits on stdin EOF"; fi
[ -e "$data/sandbox.json" ] && bad "sandbox.json left behind" || ok "sandbox.json removed"
echo "$fails failure(s)"
exit $((fails > 0))
