// Runs E1_HelloSequence, written in JavaScript, on jetflow: a Durable Task
// worker with the samples, connected to the gRPC sidecar of `jetflow dev`
// (localhost:4001, or the address given), starts an instance with the
// SDK's client and prints its status each time it changes, until it
// completes. Watch the same changes with `jetflow watch hello-js` or
// `nats kv watch jetflow-status`, or on the status page.
//
//	node hello.mjs [HOST:PORT] [--id INSTANCE]
import { TaskHubGrpcClient, TaskHubGrpcWorker, OrchestrationStatus } from "@microsoft/durabletask-js";
import { register, logger } from "./samples.mjs";

const args = process.argv.slice(2);
const idFlag = args.indexOf("--id");
const instanceId = idFlag >= 0 ? args.splice(idFlag, 2)[1] : `hello-js-${Date.now()}`;
const address = args[0] ?? "localhost:4001";

const { log, connected } = logger();
const worker = new TaskHubGrpcWorker({ hostAddress: address, workItemFilters: "auto", logger: log });
register(worker);
await worker.start();
await connected;

const client = new TaskHubGrpcClient({ hostAddress: address, logger: log });
const id = await client.scheduleNewOrchestration("E1_HelloSequence", undefined, instanceId);
console.log(`started E1_HelloSequence ${id}`);
let last = "";
for (;;) {
  const st = await client.getOrchestrationState(id, true);
  const line = `${OrchestrationStatus[st.runtimeStatus]} ${st.serializedCustomStatus ?? "null"}`;
  if (line !== last) {
    console.log(line);
    last = line;
  }
  if (st.runtimeStatus !== OrchestrationStatus.RUNNING && st.runtimeStatus !== OrchestrationStatus.PENDING) {
    console.log(`output ${st.serializedOutput}`);
    break;
  }
  await new Promise((r) => setTimeout(r, 100));
}
await worker.stop();
await client.stop();
