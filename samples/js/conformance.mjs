// Conformance of jetflow's gRPC sidecar with the Durable Task JavaScript
// SDK: the official @microsoft/durabletask-js package, unchanged, runs the
// samples of this directory and a few more orchestrators on a jetflow hub
// through the sidecar, drives them with its client, and checks what the
// client and jetflow's HTTP API return.
//
//	node conformance.mjs GRPC_HOST:PORT HTTP_API_BASE_URL
//
// The hub must also run, on a Go worker, the activity GoUpper and the
// orchestrator GoCallsJS (which calls JS_Upper). sidecar/sdk_test.go runs
// it, and follows the custom statuses of the conf-* instances through
// jetflow's status watch (what `nats kv watch` shows).
//
// One line per check on stdout (PASS or FAIL), then "N passed, N failed";
// the exit status is 1 when a check failed.
import { TaskHubGrpcClient, TaskHubGrpcWorker, OrchestrationStatus, whenAny } from "@microsoft/durabletask-js";
import { register } from "./samples.mjs";

const [addr = "localhost:4001", api = "http://127.0.0.1:8080/runtime/webhooks/durabletask"] = process.argv.slice(2);
const quiet = { info() {}, debug() {}, warn() {}, error: (...a) => console.error(...a) };

const upper = async (_ctx, s) => String(s).toUpperCase();
const callsGo = async function* (ctx, s) {
  return yield ctx.callActivity("GoUpper", s);
};
const parent = async function* (ctx) {
  const child = yield ctx.callSubOrchestrator("E1_HelloSequence", undefined, { instanceId: `${ctx.instanceId}-child` });
  return { child };
};
const race = async function* (ctx, seconds) {
  const timer = ctx.createTimer(seconds);
  const approval = ctx.waitForExternalEvent("Approve");
  const winner = yield whenAny([timer, approval]);
  return winner === approval ? `approved: ${approval.getResult()}` : "timed out";
};
const fails = async () => {
  throw new TypeError("no such seat");
};
const catcher = async function* (ctx) {
  try {
    yield ctx.callActivity("JS_Fails");
    return "not caught";
  } catch (e) {
    return `caught: ${e.message}`;
  }
};
const waiter = async function* (ctx) {
  ctx.setCustomStatus("waiting");
  return yield ctx.waitForExternalEvent("Done");
};

const versioned = async function* (ctx) {
  const child = yield ctx.callSubOrchestrator("JS_Version", undefined, { instanceId: `${ctx.instanceId}-child`, version: "1.5", tags: { level: "2" } });
  return { version: ctx.version, child };
};
const version = async (ctx) => ctx.version;

const worker = new TaskHubGrpcWorker({ hostAddress: addr, workItemFilters: "auto", logger: quiet });
register(worker);
worker.addNamedActivity("JS_Upper", upper);
worker.addNamedActivity("JS_Fails", fails);
worker.addNamedOrchestrator("JS_CallsGo", callsGo);
worker.addNamedOrchestrator("JS_Parent", parent);
worker.addNamedOrchestrator("JS_Race", race);
worker.addNamedOrchestrator("JS_Catcher", catcher);
worker.addNamedOrchestrator("JS_Waiter", waiter);
worker.addNamedOrchestrator("JS_Versioned", versioned);
worker.addNamedOrchestrator("JS_Version", version);
const client = new TaskHubGrpcClient({ hostAddress: addr, logger: quiet });

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`PASS ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
  }
}
function equal(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) throw new Error(`${what}: got ${g}, want ${w}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const json = (s) => (s === undefined ? undefined : JSON.parse(s));
async function done(id) {
  const st = await client.waitForOrchestrationCompletion(id, true, 60);
  if (!st) throw new Error(`${id}: no such instance`);
  return st;
}
async function until(id, cond, what) {
  for (let i = 0; i < 300; i++) {
    const st = await client.getOrchestrationState(id, true);
    if (st && cond(st)) return st;
    await sleep(100);
  }
  throw new Error(`${id} never ${what}`);
}
const running = (id) => until(id, (st) => st.runtimeStatus === OrchestrationStatus.RUNNING, "ran");
const customIs = (id, want) => until(id, (st) => JSON.stringify(json(st.serializedCustomStatus)) === JSON.stringify(want), `showed ${JSON.stringify(want)}`);
// A start can race the stream that announces the name: retry briefly.
// idOrOptions is an instance id or the SDK's StartOrchestrationOptions.
async function start(name, input, idOrOptions) {
  for (let i = 0; ; i++) {
    try {
      return await client.scheduleNewOrchestration(name, input, idOrOptions);
    } catch (e) {
      if (i >= 50 || !String(e?.message).includes("not registered")) throw e;
      await sleep(100);
    }
  }
}
// viaHTTP checks what jetflow's HTTP API says of an instance.
async function viaHTTP(id, want) {
  const resp = await fetch(`${api}/instances/${encodeURIComponent(id)}`);
  const body = await resp.json();
  for (const [k, v] of Object.entries(want)) equal(body[k], v, `HTTP API ${k} of ${id}`);
}
// The discount CalculateDiscount gives a user id (FNV-1a, as in Go).
function discount(userId) {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(userId)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return 5 * (1 + (h % 10));
}

await worker.start();

await check("E1_HelloSequence", async () => {
  const st = await done(await start("E1_HelloSequence", undefined, "conf-hello"));
  equal(st.runtimeStatus, OrchestrationStatus.COMPLETED, "runtimeStatus");
  equal(json(st.serializedOutput), ["Hello Tokyo!", "Hello Seattle!", "Hello London!"], "output");
  equal(json(st.serializedCustomStatus), "London", "custom status");
  equal(st.serializedInput, undefined, "no input");
  await viaHTTP("conf-hello", { runtimeStatus: "Completed", customStatus: "London", output: ["Hello Tokyo!", "Hello Seattle!", "Hello London!"], input: null });
});
await check("CityRecommender", async () => {
  const id = await start("CityRecommender", 2, "conf-city");
  const rec = { recommendedCities: ["Seattle", "London"], recommendedSeasons: ["Summer"] };
  await customIs(id, rec);
  await viaHTTP(id, { runtimeStatus: "Running", customStatus: rec, input: 2 });
  await client.raiseOrchestrationEvent(id, "CitySelected", "London");
  const st = await done(id);
  equal(json(st.serializedOutput), "London", "output");
  await viaHTTP(id, { runtimeStatus: "Completed", customStatus: rec, output: "London" });
});
await check("ReserveTicket, confirmed", async () => {
  const id = await start("ReserveTicket", "user-7", "conf-ticket-yes");
  const offer = { discount: discount("user-7"), discountTimeout: 60, bookingUrl: "https://www.myawesomebookingweb.com" };
  await customIs(id, offer);
  await client.raiseOrchestrationEvent(id, "BookingConfirmed", true);
  const st = await done(id);
  equal(json(st.serializedOutput), true, "output");
  equal(json(st.serializedCustomStatus), { message: "Thank you for confirming your booking." }, "custom status");
  await viaHTTP(id, { runtimeStatus: "Completed", output: true, customStatus: { message: "Thank you for confirming your booking." } });
});
await check("ReserveTicket, its durable timer shortened by input", async () => {
  const id = await start("ReserveTicket", { userId: "user-8", timeoutSeconds: 1 }, "conf-ticket-late");
  const st = await done(id);
  equal(json(st.serializedOutput), false, "output");
  equal(json(st.serializedCustomStatus), { message: "The booking was not confirmed on time. Please try again." }, "custom status");
});
await check("SetStatusTest", async () => {
  const id = await start("SetStatusTest", undefined, "conf-status");
  const want = { nextActions: ["A", "B", "C"], foo: 2 };
  await customIs(id, want);
  await viaHTTP(id, { runtimeStatus: "Running", customStatus: want });
  await client.raiseOrchestrationEvent(id, "Done");
  const st = await done(id);
  equal(st.runtimeStatus, OrchestrationStatus.COMPLETED, "runtimeStatus");
  await viaHTTP(id, { runtimeStatus: "Completed", customStatus: want, output: null });
});
await check("getOrchestrationHistory", async () => {
  const kinds = ["ExecutionStarted", "EventRaised", "ExecutionCompleted"];
  const events = await client.getOrchestrationHistory("conf-status");
  equal(events.map((e) => e.type).filter((t) => kinds.includes(t)), kinds, "the events of conf-status");
  equal(await client.getOrchestrationHistory("conf-nobody"), [], "an unknown instance");
});
await check("listInstanceIds", async () => {
  const ids = [];
  let key;
  do {
    const page = await client.listInstanceIds({ runtimeStatus: [OrchestrationStatus.COMPLETED], pageSize: 1, lastInstanceKey: key });
    ids.push(...page.values);
    key = page.continuationToken;
  } while (key);
  for (const id of ["conf-status", "conf-ticket-yes"]) {
    if (!ids.includes(id)) throw new Error(`${id} not among the completed ids ${JSON.stringify(ids)}`);
  }
});
await check("a JavaScript orchestrator calls a Go activity", async () => {
  const st = await done(await start("JS_CallsGo", "from js"));
  equal(json(st.serializedOutput), "FROM JS", "output");
});
await check("a Go orchestrator calls a JavaScript activity", async () => {
  const st = await done(await start("GoCallsJS", "from go"));
  equal(st.runtimeStatus, OrchestrationStatus.COMPLETED, "runtimeStatus");
  equal(json(st.serializedOutput), "FROM GO", "output");
});
await check("sub-orchestration", async () => {
  const st = await done(await start("JS_Parent", undefined, "conf-parent"));
  equal(json(st.serializedOutput), { child: ["Hello Tokyo!", "Hello Seattle!", "Hello London!"] }, "output");
  const child = await client.getOrchestrationState("conf-parent-child", true);
  equal(child?.runtimeStatus, OrchestrationStatus.COMPLETED, "the child's status");
});
await check("versions and tags", async () => {
  const st = await done(await start("JS_Versioned", undefined, { instanceId: "conf-version", version: "2.0.0", tags: { team: "js" } }));
  equal(st.runtimeStatus, OrchestrationStatus.COMPLETED, "runtimeStatus");
  equal(json(st.serializedOutput), { version: "2.0.0", child: "1.5" }, "the versions the orchestrators saw");
  equal(st.tags, { team: "js" }, "tags");
  await viaHTTP("conf-version", { version: "2.0.0", tags: { team: "js" } });
  await viaHTTP("conf-version-child", { version: "1.5", tags: { level: "2", team: "js" } }); // keys sorted, as Go writes them
});
await check("a timer races an event: the event wins", async () => {
  const id = await start("JS_Race", 60);
  await running(id);
  await client.raiseOrchestrationEvent(id, "Approve", "yes");
  equal(json((await done(id)).serializedOutput), "approved: yes", "output");
});
await check("a timer races an event: the timer wins", async () => {
  equal(json((await done(await start("JS_Race", 1))).serializedOutput), "timed out", "output");
});
await check("a caught activity failure", async () => {
  const st = await done(await start("JS_Catcher"));
  equal(st.runtimeStatus, OrchestrationStatus.COMPLETED, "runtimeStatus");
  const out = json(st.serializedOutput);
  if (!out.startsWith("caught:") || !out.includes("no such seat")) throw new Error(`output ${out}`);
});
await check("suspend, resume, terminate, purge", async () => {
  const id = await start("JS_Waiter");
  await running(id);
  await client.suspendOrchestration(id);
  await until(id, (st) => st.runtimeStatus === OrchestrationStatus.SUSPENDED, "was suspended");
  await client.resumeOrchestration(id);
  await running(id);
  await client.terminateOrchestration(id, "enough");
  const st = await done(id);
  equal(st.runtimeStatus, OrchestrationStatus.TERMINATED, "runtimeStatus");
  equal(json(st.serializedOutput), "enough", "output");
  const purged = await client.purgeOrchestration(id);
  equal(purged?.deletedInstanceCount, 1, "purged");
  equal(await client.getOrchestrationState(id), undefined, "state after purge");
});
await check("an event raised to a waiting instance", async () => {
  const id = await start("JS_Waiter");
  await customIs(id, "waiting");
  await client.raiseOrchestrationEvent(id, "Done", { ok: true });
  equal(json((await done(id)).serializedOutput), { ok: true }, "output");
});

console.log(`${passed} passed, ${failed} failed`);
await worker.stop();
await client.stop();
process.exit(failed > 0 ? 1 : 0);
