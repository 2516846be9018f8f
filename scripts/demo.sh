#!/usr/bin/env bash
# The local stack end to end: start LocalStack, create a queue with its dead-letter queue, send
# demo messages (some of them bad), and drain them with local-runner until it is idle.
#
#   scripts/demo.sh                    # then LocalStack is stopped again
#   KEEP_LOCALSTACK=1 scripts/demo.sh  # leave it running on 127.0.0.1:4566 to keep playing
set -euo pipefail
cd "$(dirname "$0")/.."

queue=demo-orders
messages=${DEMO_MESSAGES:-200}

endpoint=$(scripts/localstack.sh start)
if [ -z "${KEEP_LOCALSTACK:-}" ]; then trap 'scripts/localstack.sh stop' EXIT; fi

echo "demo: building local-runner" >&2
cargo build --quiet -p local-runner

# A short visibility timeout and maxReceiveCount 3 so that bad messages reach the DLQ within
# seconds; template.yaml has the production settings.
echo "demo: creating $queue (+ $queue-dlq) and sending $messages messages, 1 in 20 of them bad" >&2
.venv/localstack/bin/python - "$endpoint" "$queue" "$messages" <<'PY'
import json, random, sys
import boto3

endpoint, queue, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
dlq_url = sqs.create_queue(QueueName=f"{queue}-dlq")["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
url = sqs.create_queue(QueueName=queue, Attributes={
    "VisibilityTimeout": "2",
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
})["QueueUrl"]
for queue_url in (url, dlq_url):
    sqs.purge_queue(QueueUrl=queue_url)

def body(i):
    if i % 20 == 7:
        return random.choice(["not json", '{"id": "", "kind": "order"}', '{"kind": "order"}'])
    return json.dumps({"id": f"order-{i}", "kind": "order", "payload": {"qty": i % 5 + 1},
                       "work_ms": random.randint(0, 200)})

for start in range(0, count, 10):
    entries = [{"Id": str(i), "MessageBody": body(i)} for i in range(start, min(start + 10, count))]
    sqs.send_message_batch(QueueUrl=url, Entries=entries)
PY

echo "demo: running local-runner until it has been idle for 5 s" >&2
# --retry-backoff 0: failures come back after the demo queue's own 2 s, so the bad messages
# reach the DLQ within the demo (the default back-off would space them 2, 4, 8 s apart).
target/debug/local-runner --queue "$queue" --endpoint-url "$endpoint" --exit-when-idle 5 --retry-backoff 0

.venv/localstack/bin/python - "$endpoint" "$queue" <<'PY'
import sys
import boto3

endpoint, queue = sys.argv[1], sys.argv[2]
sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
def depth(name):
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])
print(f"demo: {queue} now holds {depth(queue)} messages; {queue}-dlq holds {depth(queue + '-dlq')} (the bad ones)",
      file=sys.stderr)
PY
