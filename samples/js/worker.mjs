// Serves the four samples, written in JavaScript, to jetflow until Ctrl-C:
// start instances with the HTTP API, the CLI or any Durable Task client.
//
//	node worker.mjs [HOST:PORT]
import { TaskHubGrpcWorker } from "@microsoft/durabletask-js";
import { register, logger } from "./samples.mjs";

const address = process.argv[2] ?? "localhost:4001";
const { log, connected } = logger();
const worker = new TaskHubGrpcWorker({ hostAddress: address, workItemFilters: "auto", logger: log });
register(worker);
await worker.start();
await connected;
console.log(`serving E1_HelloSequence, E1_SayHello, CityRecommender, ReserveTicket, CalculateDiscount and SetStatusTest on ${address}; Ctrl-C stops`);
process.on("SIGINT", async () => {
  await worker.stop();
  process.exit(0);
});
