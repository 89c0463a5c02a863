// Conformance of jetflow's gRPC sidecar with the Durable Task JavaScript
// SDK: the official @microsoft/durabletask-js package, unchanged, runs
// orchestrators and activities on a jetflow hub through the sidecar and
// drives instances with its client, and the script checks what the client
// returns.
//
//	node conformance.mjs HOST:PORT
//
// The hub must also run, on a Go worker, the activity GoUpper and the
// orchestrator GoCallsJS (which calls JS_Upper): see sidecar/sdk_test.go,
// which also follows conf-hello's custom status through jetflow's status
// watch.
//
// One line per check on stdout (PASS or FAIL), then "N passed, N failed";
// the exit status is 1 when a check failed.
import { TaskHubGrpcClient, TaskHubGrpcWorker, OrchestrationStatus, whenAny } from "@microsoft/durabletask-js";

const addr = process.argv[2] ?? "localhost:4001";
const quiet = { info() {}, debug() {}, warn() {}, error: (...a) => console.error(...a) };

// E1_HelloSequence of the custom-status article, in JavaScript.
const sayHello = async (_ctx, city) => `Hello ${city}!`;
const helloSequence = async function* (ctx) {
  const outputs = [];
  for (const city of ["Tokyo", "Seattle", "London"]) {
    outputs.push(yield ctx.callActivity("E1_SayHello", city));
    ctx.setCustomStatus(city);
  }
  return outputs;
};
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

const worker = new TaskHubGrpcWorker({ hostAddress: addr, workItemFilters: "auto", logger: quiet });
worker.addNamedOrchestrator("E1_HelloSequence", helloSequence);
worker.addNamedActivity("E1_SayHello", sayHello);
worker.addNamedActivity("JS_Upper", upper);
worker.addNamedActivity("JS_Fails", fails);
worker.addNamedOrchestrator("JS_CallsGo", callsGo);
worker.addNamedOrchestrator("JS_Parent", parent);
worker.addNamedOrchestrator("JS_Race", race);
worker.addNamedOrchestrator("JS_Catcher", catcher);
worker.addNamedOrchestrator("JS_Waiter", waiter);
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
async function done(id) {
  const st = await client.waitForOrchestrationCompletion(id, true, 60);
  if (!st) throw new Error(`${id}: no such instance`);
  return st;
}
async function until(id, status) {
  for (let i = 0; i < 200; i++) {
    const st = await client.getOrchestrationState(id, true);
    if (st?.runtimeStatus === status) return st;
    await sleep(100);
  }
  throw new Error(`${id} never became ${OrchestrationStatus[status]}`);
}
// A start can race the stream that announces the name: retry briefly.
async function start(name, input, id) {
  for (let i = 0; ; i++) {
    try {
      return await client.scheduleNewOrchestration(name, input, id);
    } catch (e) {
      if (i >= 50 || !String(e?.message).includes("not registered")) throw e;
      await sleep(100);
    }
  }
}

await worker.start();

await check("E1_HelloSequence: output and custom status", async () => {
  const id = await start("E1_HelloSequence", undefined, "conf-hello");
  const st = await done(id);
  equal(st.runtimeStatus, OrchestrationStatus.COMPLETED, "runtimeStatus");
  equal(JSON.parse(st.serializedOutput), ["Hello Tokyo!", "Hello Seattle!", "Hello London!"], "output");
  equal(JSON.parse(st.serializedCustomStatus), "London", "custom status");
  equal(st.serializedInput, undefined, "no input");
});
await check("a JavaScript orchestrator calls a Go activity", async () => {
  const st = await done(await start("JS_CallsGo", "from js"));
  equal(JSON.parse(st.serializedOutput), "FROM JS", "output");
});
await check("a Go orchestrator calls a JavaScript activity", async () => {
  const st = await done(await start("GoCallsJS", "from go"));
  equal(st.runtimeStatus, OrchestrationStatus.COMPLETED, "runtimeStatus");
  equal(JSON.parse(st.serializedOutput), "FROM GO", "output");
});
await check("sub-orchestration", async () => {
  const st = await done(await start("JS_Parent", undefined, "conf-parent"));
  equal(JSON.parse(st.serializedOutput), { child: ["Hello Tokyo!", "Hello Seattle!", "Hello London!"] }, "output");
  const child = await client.getOrchestrationState("conf-parent-child", true);
  equal(child?.runtimeStatus, OrchestrationStatus.COMPLETED, "the child's status");
});
await check("a timer races an event: the event wins", async () => {
  const id = await start("JS_Race", 60);
  await until(id, OrchestrationStatus.RUNNING);
  await client.raiseOrchestrationEvent(id, "Approve", "yes");
  equal(JSON.parse((await done(id)).serializedOutput), "approved: yes", "output");
});
await check("a timer races an event: the timer wins", async () => {
  const st = await done(await start("JS_Race", 1));
  equal(JSON.parse(st.serializedOutput), "timed out", "output");
});
await check("a caught activity failure", async () => {
  const st = await done(await start("JS_Catcher"));
  equal(st.runtimeStatus, OrchestrationStatus.COMPLETED, "runtimeStatus");
  const out = JSON.parse(st.serializedOutput);
  if (!out.startsWith("caught:") || !out.includes("no such seat")) throw new Error(`output ${out}`);
});
await check("suspend, resume, terminate, purge", async () => {
  const id = await start("JS_Waiter");
  await until(id, OrchestrationStatus.RUNNING);
  await client.suspendOrchestration(id);
  await until(id, OrchestrationStatus.SUSPENDED);
  await client.resumeOrchestration(id);
  await until(id, OrchestrationStatus.RUNNING);
  await client.terminateOrchestration(id, "enough");
  const st = await done(id);
  equal(st.runtimeStatus, OrchestrationStatus.TERMINATED, "runtimeStatus");
  equal(JSON.parse(st.serializedOutput), "enough", "output");
  const purged = await client.purgeOrchestration(id);
  equal(purged?.deletedInstanceCount, 1, "purged");
  equal(await client.getOrchestrationState(id), undefined, "state after purge");
});
await check("an event raised to a waiting instance", async () => {
  const id = await start("JS_Waiter");
  await until(id, OrchestrationStatus.RUNNING);
  equal(JSON.parse((await client.getOrchestrationState(id)).serializedCustomStatus), "waiting", "custom status");
  await client.raiseOrchestrationEvent(id, "Done", { ok: true });
  equal(JSON.parse((await done(id)).serializedOutput), { ok: true }, "output");
});

console.log(`${passed} passed, ${failed} failed`);
await worker.stop();
await client.stop();
process.exit(failed > 0 ? 1 : 0);
