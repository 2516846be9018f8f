#!/usr/bin/env bash
# The weight of a function, against the Lambda Rust runtime's own: three functions built the same
# way (`cargo lambda build --release`, the build `sam build` runs), side by side in one run:
#
#   (a) the anchor: tests/plain-function, lambda_runtime + aws_lambda_events alone, returning
#       batchItemFailures;
#   (b) the minimal handler a new project gets (templates/sqs-function, default features);
#   (c) the example, handler/, with idempotency (a table on a local DynamoDB) and large payloads
#       (a bucket on LocalStack's S3) on.
#
# For each: the binary's size, its size zipped (as Lambda takes it), exec → first GET /next
# (min / median / max of RUNS cold starts, the three taken in turn), and the resident set after
# 1,000 invocations of 10 records, against bench/harness.py's Runtime API (its `weight` section).
# Prints a Markdown table; the figures go to bench/results/summary.json.
#
#   bench/weight.sh                       # RUNS=15
#   RUNS=5 bench/weight.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=${RUNS:-15}
work=$(mktemp -d "${TMPDIR:-/tmp}/weight.XXXXXX")
export LOCALSTACK_STATE="$work/localstack" LOCALSTACK_PORT=0 DYNAMODB_STATE="$work/dynamodb" DYNAMODB_PORT=0
cleanup() {
  scripts/localstack.sh stop >/dev/null 2>&1 || true
  scripts/dynamodb.sh stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

PATH="$(scripts/cargo-lambda.sh):$PATH"
export PATH
target="${CARGO_TARGET_DIR:-$root/target}"
echo "weight: building (a) and (c) with cargo lambda build --release" >&2
cargo lambda build --quiet --release --locked -p plain-function --bin plain-bootstrap >&2
cp "$target/lambda/plain-bootstrap/bootstrap" "$work/anchor"
cargo lambda build --quiet --release --locked -p handler --bin bootstrap >&2
cp "$target/lambda/bootstrap/bootstrap" "$work/example"

echo "weight: building (b), a new project (sam init --location templates/sqs-function)" >&2
(cd "$work" && "$root/scripts/sam.sh" init --location "$root/templates/sqs-function" --no-input --name minimal) >/dev/null
cp Cargo.lock "$work/minimal/"
# The same target directory: the dependencies the two share are built once. The new project's
# `bootstrap` replaces the example's in target/lambda, which was copied out above.
(cd "$work/minimal" && CARGO_TARGET_DIR="$target" cargo lambda build --quiet --release -p handler --bin bootstrap >&2)
cp "$target/lambda/bootstrap/bootstrap" "$work/minimal-bootstrap"

echo "weight: a local DynamoDB table and an S3 bucket for (c)" >&2
dynamodb=$(scripts/dynamodb.sh start)
localstack=$(LOCALSTACK_SERVICES=s3,sqs scripts/localstack.sh start)
AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 .venv/moto/bin/python - "$dynamodb" "$localstack" <<'PY'
import sys, boto3
dynamodb, localstack = sys.argv[1:]
boto3.client("dynamodb", endpoint_url=dynamodb).create_table(
    TableName="weight-idempotency", BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
boto3.client("s3", endpoint_url=localstack).create_bucket(Bucket="weight-payloads")
PY

# Every function gets the same credentials and region (none of them reaches AWS). (c)'s records
# keep their ids from one invocation to the next: after the first, each finds its work done in
# the table, as a redelivered message would.
common=(AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 "AWS_ENDPOINT_URL_SQS=$localstack")
args=()
for name in "(a) anchor" "(b) minimal" "(c) example"; do
  for pair in "${common[@]}"; do args+=(--weight-env "$name:$pair"); done
done
"$(bench/venv.sh)" bench/harness.py --endpoint "$localstack" --bin "$target/release" --only weight \
  --weight-runs "$runs" \
  --weight "(a) anchor=$work/anchor" --weight "(b) minimal=$work/minimal-bootstrap" --weight "(c) example=$work/example" \
  --weight-body '(a) anchor:{"id": "order-{i}"}' \
  --weight-body '(b) minimal:{"id": "order-{i}", "quantity": 1}' \
  --weight-body '(c) example:{"id": "order-{i}", "kind": "order", "payload": {"qty": 1}}' \
  --weight-env "(c) example:IDEMPOTENCY_TABLE=weight-idempotency" --weight-env "(c) example:AWS_ENDPOINT_URL_DYNAMODB=$dynamodb" \
  --weight-env "(c) example:PAYLOAD_BUCKET=weight-payloads" --weight-env "(c) example:AWS_ENDPOINT_URL_S3=$localstack" \
  "${args[@]}"
