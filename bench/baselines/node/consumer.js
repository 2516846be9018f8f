// Baseline: Node's sqs-consumer, tuned as its README allows: 16 consumers on one SQS client with a
// keep-alive agent, 10 messages per receive, JSON.parse on each body, one DeleteMessageBatch per
// receive (handleMessageBatch). Runs until it is killed.
//
//   node consumer.js <endpoint> <queue url>
"use strict";
const { Agent } = require("node:http");
const { SQSClient } = require("@aws-sdk/client-sqs");
const { NodeHttpHandler } = require("@smithy/node-http-handler");
const { Consumer } = require("sqs-consumer");

const [endpoint, queueUrl] = process.argv.slice(2);
const consumers = 16;
const sqs = new SQSClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
  requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: consumers * 2 }) }),
});
for (let i = 0; i < consumers; i++) {
  Consumer.create({
    queueUrl,
    sqs,
    batchSize: 10,
    waitTimeSeconds: 2,
    pollingWaitTimeMs: 0,
    handleMessageBatch: async (messages) => {
      for (const message of messages) JSON.parse(message.Body);
      return messages;
    },
  }).start();
}
