"""Baseline: the same consumer tuned as far as its design allows: 16 tasks, 10 messages per
receive, json.loads on each body, one DeleteMessageBatch per receive. Runs until it is killed.
"""
import asyncio
import json
import sys

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session


async def consume(client, queue_url):
    while True:
        answer = await client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2)
        messages = answer.get("Messages", [])
        for message in messages:
            json.loads(message["Body"])
        if messages:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            await client.delete_message_batch(QueueUrl=queue_url, Entries=entries)


async def main(endpoint, queue_url, tasks=16):
    session = get_session()
    config = AioConfig(max_pool_connections=tasks * 2)
    async with session.create_client("sqs", endpoint_url=endpoint, region_name="us-east-1", config=config,
                                     aws_access_key_id="test", aws_secret_access_key="test") as client:
        await asyncio.gather(*(consume(client, queue_url) for _ in range(tasks)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
