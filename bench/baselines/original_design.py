"""Baseline: the design of the blog post that started this project, rewritten for the benchmark.

Two asyncio tasks; each receives one message at a time (long poll of 2 s), parses the body with
json.loads and deletes it with its own DeleteMessage call. Runs until it is killed.
"""
import asyncio
import json
import sys

from aiobotocore.session import get_session


async def consume(client, queue_url):
    while True:
        answer = await client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=2)
        for message in answer.get("Messages", []):
            json.loads(message["Body"])
            await client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


async def main(endpoint, queue_url):
    session = get_session()
    async with session.create_client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                                     aws_access_key_id="test", aws_secret_access_key="test") as client:
        await asyncio.gather(*(consume(client, queue_url) for _ in range(2)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
