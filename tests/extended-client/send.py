"""Sends one message with AWS's SQS Extended Client for Python (amazon-sqs-extended-client), its
body kept in S3: the producer side of the large-payload tests (tests/tests/large_payloads.rs).

    python send.py QUEUE_URL BUCKET [--legacy] < BODY

--legacy sets `use_legacy_attribute`: the Java 1.x pointer class and `SQSLargePayloadSize`.
The endpoint, region and credentials come from the environment (AWS_ENDPOINT_URL and so on).
"""

import sys

from sqs_extended_client import SQSExtendedClientSession  # noqa: F401 (patches boto3's session)
import boto3


def main() -> None:
    queue_url, bucket = sys.argv[1:3]
    body = sys.stdin.read()
    sqs = boto3.session.Session().client("sqs")
    sqs.large_payload_support = bucket
    sqs.always_through_s3 = True
    sqs.use_legacy_attribute = "--legacy" in sys.argv[3:]
    sent = sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    print(sent["MessageId"])


if __name__ == "__main__":
    main()
