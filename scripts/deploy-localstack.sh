#!/usr/bin/env bash
# The deployed path, end to end, on this machine: `sam build` and `sam deploy` of template.yaml
# and template-fifo.yaml to a LocalStack that runs the function in containers and drives it with
# its own SQS event source mapping; the scenarios through the deployed stacks, and the same
# scenarios under `local-runner --lambda` (tests/tests/deployed.rs), which must end the same;
# then `sam delete`, and LocalStack and podman stopped by pid.
#
#   scripts/deploy-localstack.sh           # about 2 minutes once built
#   scripts/deploy-localstack.sh CMD ARGS  # CMD instead of the scenarios (bench/alternatives.sh)
#
# CMD runs in the deployed setting: AWS_ENDPOINT_URL, DOCKER_HOST (when podman serves it),
# DEPLOYED_STACKS (what it must know of the stacks, as JSON) and DEPLOYED_IMAGE (the functions'
# base image) set; the stacks are deleted after it, whatever it returns.
#
# The stacks deploy with short timeouts (the parameters below) so that failures reach the
# dead-letter queue within the test. On a machine with a Docker engine and the internet, plain
# `sam deploy` against LocalStack needs none of the container plumbing below: it exists because
# these machines have neither (no image can be pulled, and LocalStack cannot download its Lambda
# init, so tests/localstack-init stands in for it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
state="$root/.deploy"
parameters=(Architecture=x86_64 FunctionTimeout=3 QueueVisibilityTimeout=30 MaxReceiveCount=3)
image=localhost/sqs-handler-lambda:local

cannot() { echo "deploy: cannot run: $*" >&2; exit 1; }
say() { echo "deploy: $*" >&2; }
step() { say "$* ($((SECONDS - started)) s in)"; }
started=$SECONDS

# The state of an earlier run goes, unless its servers still run: that run is still going (or
# was killed), and deleting their pid files would leave nothing to stop them by.
if LOCALSTACK_STATE="$state/localstack" scripts/localstack.sh endpoint >/dev/null 2>&1 ||
  scripts/podman.sh running "$state" >/dev/null; then
  cannot "a server of an earlier run is still up in $state: wait for that run to end, or stop it with LOCALSTACK_STATE=$state/localstack scripts/localstack.sh stop; scripts/podman.sh stop $state"
fi
rm -rf "$state" && mkdir -p "$state"
export LOCALSTACK_STATE="$state/localstack" LOCALSTACK_PORT=0
endpoint=
cleanup() {
  local status=$? pids=() stack
  if [ -n "$endpoint" ]; then
    # Both at once: each waits for CloudFormation in 30 s steps.
    step "sam delete of both stacks"
    for stack in sqs-handler sqs-handler-fifo; do
      AWS_ENDPOINT_URL="$endpoint" scripts/sam.sh delete --stack-name "$stack" --no-prompts \
        >"$state/delete-$stack.log" 2>&1 &
      pids+=($!)
    done
    for pid in "${pids[@]}"; do
      wait "$pid" || { say "sam delete failed; see $state/delete-*.log"; status=1; }
    done
  fi
  scripts/localstack.sh stop || status=1
  scripts/podman.sh stop "$state" || status=1
  step "stacks deleted, LocalStack and podman stopped"
  exit "$status"
}
trap cleanup EXIT

step "building the functions with sam build (cargo-lambda)"
PATH="$(scripts/cargo-lambda.sh):$PATH"
export PATH
for variant in standard fifo; do
  template=template.yaml; [ "$variant" = fifo ] && template=template-fifo.yaml
  scripts/sam.sh build --template "$template" --build-dir "$state/build/$variant" \
    --parameter-overrides Architecture=x86_64 >"$state/build-$variant.log" 2>&1 ||
    { tail -n 30 "$state/build-$variant.log" >&2; cannot "sam build of $template failed"; }
done
# The test command's own debug build (the same packages and features), so that beside its tests
# nothing is rebuilt: localstack-init and the deployed tests come out of it.
cargo build --quiet --locked --workspace --exclude bench --bins --tests --features handler/local

step "a container engine for LocalStack's functions (podman) and their base image"
docker_host=$(scripts/podman.sh start "$state") || cannot "no container engine"
if [ -n "$docker_host" ]; then export DOCKER_HOST="$docker_host" CONTAINERS_CONF="$state/containers.conf"; fi
target_dir=$(cargo metadata --format-version 1 --no-deps | .venv/sam/bin/python -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
scripts/podman.sh image "$image" "$state" "$state"/build/*/*/bootstrap "$target_dir/debug/localstack-init" ||
  cannot "the base image could not be built"
# The bridge comes up with a first container, so after the image: a new machine has no other.
bridge=$(scripts/podman.sh bridge) || cannot "no podman bridge"
# LocalStack downloads its Lambda init at first use unless it is already in place.
init_dir="$LOCALSTACK_STATE/data/var/lib/localstack/lib/lambda-runtime/v0.1.41-pre/x86_64/var/rapid"
mkdir -p "$init_dir" && cp "$target_dir/debug/localstack-init" "$init_dir/init"
# podman cannot pull an image that exists only here: LocalStack's pulls of it must succeed as is.
cat >"$state/docker" <<'SH'
#!/bin/sh
if [ "$1" = pull ]; then
  shift
  image=
  while [ $# -gt 0 ]; do
    case "$1" in --platform) shift ;; -*) ;; *) image=$1 ;; esac
    shift
  done
  if docker image inspect "$image" >/dev/null 2>&1; then exit 0; fi
  exec docker pull "$image"
fi
exec docker "$@"
SH
chmod +x "$state/docker"

step "LocalStack with Lambda, CloudFormation, IAM, STS, logs, S3 and SQS"
endpoint=$(
  DOCKER_CMD="$state/docker" \
  LAMBDA_RUNTIME_IMAGE_MAPPING="{\"provided.al2023\": \"$image\"}" \
  LAMBDA_DOCKER_NETWORK=podman HOSTNAME_FROM_LAMBDA="$bridge" \
  LOCALSTACK_FULL=1 LOCALSTACK_SERVICES=lambda,cloudformation,iam,sts,logs,s3,sqs \
  LOCALSTACK_ALSO_LISTEN="$bridge" scripts/localstack.sh start
) || cannot "LocalStack did not start; see $LOCALSTACK_STATE/log"
export AWS_ENDPOINT_URL="$endpoint" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1

for variant in standard fifo; do
  stack=sqs-handler; [ "$variant" = fifo ] && stack=sqs-handler-fifo
  step "sam deploy of the $variant stack ($stack)"
  scripts/sam.sh deploy --template-file "$state/build/$variant/template.yaml" --stack-name "$stack" \
    --parameter-overrides "${parameters[@]}" --capabilities CAPABILITY_IAM --resolve-s3 \
    --no-confirm-changeset --no-fail-on-empty-changeset >"$state/deploy-$variant.log" 2>&1 ||
    { tail -n 30 "$state/deploy-$variant.log" >&2; cannot "sam deploy of the $variant stack failed"; }
done

# What the tests need to know of the stacks.
.venv/sam/bin/python - "$state" "${parameters[@]}" <<'PY'
import json, sys
import boto3
state, parameters = sys.argv[1], sys.argv[2:]
cloudformation = boto3.client("cloudformation")
stacks = {}
for variant, stack, template in [("standard", "sqs-handler", "template.yaml"), ("fifo", "sqs-handler-fifo", "template-fifo.yaml")]:
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}
    stacks[variant] = {
        "stack": stack,
        "template": template,
        "parameters": parameters,
        "queue_url": outputs["QueueUrl"],
        "dlq_url": outputs["DeadLetterQueueUrl"],
        "function": outputs["FunctionArn"].rsplit(":", 1)[-1],
        "bootstrap": f"{state}/build/{variant}/HandlerFunction/bootstrap",
    }
json.dump(stacks, open(f"{state}/stacks.json", "w"), indent=2)
PY

if [ $# -gt 0 ]; then
  step "$*, deployed"
  status=0
  DEPLOYED_STACKS="$state/stacks.json" DEPLOYED_IMAGE="$image" "$@" || status=$?
  exit "$status"
fi

step "the scenarios, deployed and under local-runner --lambda"
failed=0
DEPLOYED_ENDPOINT="$endpoint" DEPLOYED_STACKS="$state/stacks.json" DEPLOYED_REPORT="$state/parity" \
  LOCALSTACK_ENDPOINT="$endpoint" \
  cargo nextest run --locked --workspace --exclude bench --features handler/local \
    -E 'binary(deployed)' --ignore-default-filter --no-fail-fast || failed=1
{
  echo "| scenario | local-runner --lambda | LocalStack's event source mapping | |"
  echo "|---|---|---|---|"
  cat "$state"/parity.*
} | tee "$state/parity.md"
step "done; tearing the stacks down"
exit "$failed"
