import { describe, expect, it } from "vitest";
import { measureStalls } from "../bench/event-loop.js";

/*
 * No single request may stall the server's event loop (every tenant's dispatching and every other request share it).
 * Each case runs one heavy request against a fresh in-process server while perf_hooks samples the loop's delay and a
 * poller times GET /healthz. Before the work moved off the loop these sizes stalled it for seconds (cache build
 * 8–16 s, 5,000 vector inserts 2–6 s, 2,000 vectorized objects of 1.5 KB 2–6 s, 20 MB of embedding input 2–12 s); now the worst
 * is tens of ms. The bound is one second, a margin wide enough for a loaded 2-core CI box; the strict 100 ms goal is
 * measured at full size by bench/event-loop.ts. measureStalls also checks every answer (all objects stored, one
 * embedding per input, the batch's last object found by its vector as soon as the batch answered).
 */
describe("the event loop stays free while one heavy request runs", () => {
  it("first use of local/glove-100d, a large vector import, a vectorizer import and large sync embeddings", async () => {
    const stalls = await measureStalls({ vectorObjects: 10_000, vectorizerObjects: 8_000, vectorizerChars: 200, embedInputs: 300, embedChars: 66_000 });
    expect(stalls.map((s) => s.status)).toEqual([200, 200, 200, 200]);
    for (const s of stalls) {
      expect({ case: s.case, loopDelayUnder1s: s.maxLoopDelayMs < 1_000, healthzUnder1s: s.maxHealthzMs < 1_000 }, `${s.case}: loop ${s.maxLoopDelayMs.toFixed(0)} ms, /healthz ${s.maxHealthzMs.toFixed(0)} ms`).toEqual({
        case: s.case,
        loopDelayUnder1s: true,
        healthzUnder1s: true,
      });
    }
  }, 240_000);
});
