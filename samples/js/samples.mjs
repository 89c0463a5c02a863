// The four samples of the Durable Functions custom-status article, written
// with the Durable Task JavaScript SDK: the same names, inputs, custom
// statuses and outputs as jetflow's Go samples (package samples).

import { whenAny } from "@microsoft/durabletask-js";

// E1_HelloSequence greets three cities in order and shows the city it is
// at as its custom status: Tokyo, Seattle, London.
export const helloSequence = async function* (ctx) {
  const outputs = [];
  for (const city of ["Tokyo", "Seattle", "London"]) {
    outputs.push(yield ctx.callActivity("E1_SayHello", city));
    ctx.setCustomStatus(city);
  }
  return outputs;
};

// E1_SayHello returns "Hello {city}!".
export const sayHello = async (_ctx, city) => `Hello ${city}!`;

// CityRecommender shows recommended cities and seasons for input 1, 2 or
// 3, then waits for the CitySelected event and returns the city chosen.
export const cityRecommender = async function* (ctx, choice) {
  const recommendations = {
    1: { recommendedCities: ["Tokyo", "Seattle"], recommendedSeasons: ["Spring", "Summer"] },
    2: { recommendedCities: ["Seattle", "London"], recommendedSeasons: ["Summer"] },
    3: { recommendedCities: ["Tokyo", "London"], recommendedSeasons: ["Spring", "Summer"] },
  };
  const rec = recommendations[choice];
  if (!rec) throw new Error(`input must be 1, 2 or 3, not ${JSON.stringify(choice)}`);
  ctx.setCustomStatus(rec);
  return yield ctx.waitForExternalEvent("CitySelected");
};

// ReserveTicket offers the user a discount and waits for BookingConfirmed
// for 60 seconds (or input.timeoutSeconds): its custom status says what
// happened. Input: a user id, or { userId, timeoutSeconds }.
export const reserveTicket = async function* (ctx, input) {
  const { userId, timeoutSeconds = 60 } = typeof input === "string" ? { userId: input } : input;
  const discount = yield ctx.callActivity("CalculateDiscount", userId);
  ctx.setCustomStatus({ discount, discountTimeout: timeoutSeconds, bookingUrl: "https://www.myawesomebookingweb.com" });
  const confirmation = ctx.waitForExternalEvent("BookingConfirmed");
  const timeout = ctx.createTimer(timeoutSeconds);
  const winner = yield whenAny([confirmation, timeout]);
  const confirmed = winner === confirmation && confirmation.getResult() === true;
  ctx.setCustomStatus({
    message: confirmed ? "Thank you for confirming your booking." : "The booking was not confirmed on time. Please try again.",
  });
  return confirmed;
};

// CalculateDiscount returns a discount percentage from 5 to 50 derived from
// the user id (FNV-1a, as the Go sample does): the same user always gets
// the same discount.
export const calculateDiscount = async (_ctx, userId) => {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(String(userId))) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return 5 * (1 + (h % 10));
};

// SetStatusTest shows {"nextActions":["A","B","C"],"foo":2} and completes
// when the Done event arrives.
export const setStatusTest = async function* (ctx) {
  ctx.setCustomStatus({ nextActions: ["A", "B", "C"], foo: 2 });
  yield ctx.waitForExternalEvent("Done");
};

// register adds the samples to a TaskHubGrpcWorker.
export function register(worker) {
  worker.addNamedOrchestrator("E1_HelloSequence", helloSequence);
  worker.addNamedActivity("E1_SayHello", sayHello);
  worker.addNamedOrchestrator("CityRecommender", cityRecommender);
  worker.addNamedOrchestrator("ReserveTicket", reserveTicket);
  worker.addNamedActivity("CalculateDiscount", calculateDiscount);
  worker.addNamedOrchestrator("SetStatusTest", setStatusTest);
}

// logger returns a quiet logger for the SDK and a promise that resolves
// once the worker's work-item stream is open (the SDK logs it) and the
// sidecar had a moment to take the names: a start before that could go to
// jetflow dev's Go samples of the same names.
export function logger() {
  let ready;
  const connected = new Promise((r) => (ready = r));
  const log = {
    error: (...a) => console.error(...a),
    warn: (...a) => console.warn(...a),
    info: (msg) => {
      if (String(msg).startsWith("Successfully connected")) setTimeout(ready, 500);
    },
    debug() {},
  };
  return { log, connected };
}
