import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import weaviate, { type WeaviateClient } from "weaviate-client";
import { SHARED_CACHE_DIR, startServer, type TestServer } from "./support/harness.js";
import { connectWeaviate, weaviateCall } from "./support/weaviate.js";

/*
 * Multi-tenancy as a Weaviate user writes it, through the official weaviate-client (v3, default options): a class with
 * `multiTenancy({ enabled: true })`, `tenants.create/get/update/remove`, `withTenant(...)` for inserts, batches,
 * queries (gRPC), deletes and REST object routes; one tenant's objects are invisible to another; Weaviate's 422s.
 */

const call = weaviateCall;
const connect = connectWeaviate;

describe("multi-tenancy through weaviate-client", () => {
  let server: TestServer;
  let client: WeaviateClient;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "openbatch-tenants-"));
    server = await startServer({}, { cacheDir: SHARED_CACHE_DIR, grpcPort: 0, dataDir });
    client = await connect(server);
    await client.collections.create({
      name: "Notes",
      multiTenancy: weaviate.configure.multiTenancy({ enabled: true }),
      vectorizers: weaviate.configure.vectorizer.none(),
      properties: [{ name: "text", dataType: "text" }],
    });
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("creates, lists, updates and removes tenants", async () => {
    const notes = client.collections.get("Notes");
    expect((await notes.config.get()).multiTenancy.enabled).toBe(true);
    const created = await notes.tenants.create([{ name: "alice" }, { name: "bob" }, { name: "carol", activityStatus: "INACTIVE" }]);
    expect(created.map((t) => [t.name, t.activityStatus])).toEqual([["alice", "ACTIVE"], ["bob", "ACTIVE"], ["carol", "INACTIVE"]]);
    const all = await notes.tenants.get();
    expect(Object.keys(all).sort()).toEqual(["alice", "bob", "carol"]);
    expect(all.carol!.activityStatus).toBe("INACTIVE");
    expect((await notes.tenants.getByName("bob"))?.activityStatus).toBe("ACTIVE");
    expect(await notes.tenants.getByName("nobody")).toBeNull();
    await notes.tenants.activate("carol");
    expect((await notes.tenants.getByName("carol"))?.activityStatus).toBe("ACTIVE");
    await notes.tenants.deactivate("carol");
    expect((await notes.tenants.getByName("carol"))?.activityStatus).toBe("INACTIVE");
    // Raw REST: HOT / COLD as older clients send them.
    const put = await call(server, "PUT", "/v1/schema/Notes/tenants", [{ name: "carol", activityStatus: "HOT" }]);
    expect(put.status).toBe(200);
    expect(put.body).toEqual([{ name: "carol", activityStatus: "ACTIVE" }]);
    const off = await call(server, "PUT", "/v1/schema/Notes/tenants", [{ name: "carol", activityStatus: "OFFLOADED" }]);
    expect(off.status).toBe(422);
    expect(off.body.error[0].message).toContain("OFFLOADED");
    const unknown = await call(server, "PUT", "/v1/schema/Notes/tenants", [{ name: "zed", activityStatus: "HOT" }]);
    expect(unknown.status).toBe(422);
    expect(unknown.body.error[0].message).toBe('tenant not found: "zed"');
    expect((await call(server, "POST", "/v1/schema/Notes/tenants", [{ name: "bad name!" }])).status).toBe(422);
  });

  it("keeps each tenant's objects to itself, over REST and gRPC", async () => {
    const notes = client.collections.get("Notes");
    const alice = notes.withTenant("alice");
    const bob = notes.withTenant("bob");
    const id = await alice.data.insert({ properties: { text: "alice's secret" }, vectors: [1, 0, 0] });
    const batch = await bob.data.insertMany([
      { properties: { text: "bob one" }, vectors: [0, 1, 0] },
      { properties: { text: "bob two" }, vectors: [0, 0, 1] },
    ]);
    expect(batch.hasErrors).toBe(false);

    expect((await alice.query.fetchObjects()).objects.map((o) => o.properties.text)).toEqual(["alice's secret"]);
    expect((await bob.query.fetchObjects()).objects.map((o) => o.properties.text).sort()).toEqual(["bob one", "bob two"]);
    expect(await bob.query.fetchObjectById(id)).toBeNull();
    expect((await alice.query.fetchObjectById(id))?.properties.text).toBe("alice's secret");
    const near = await bob.query.nearVector([1, 0, 0], { limit: 5 });
    expect(near.objects.every((o) => String(o.properties.text).startsWith("bob"))).toBe(true);
    expect(await alice.data.exists(id)).toBe(true);
    expect(await bob.data.exists(id)).toBe(false);

    // REST object routes with ?tenant=.
    const got = await call(server, "GET", `/v1/objects/Notes/${id}?tenant=alice`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ class: "Notes", tenant: "alice", properties: { text: "alice's secret" } });
    expect((await call(server, "GET", `/v1/objects/Notes/${id}?tenant=bob`)).status).toBe(404);
    const listed = await call(server, "GET", "/v1/objects?class=Notes&tenant=bob");
    expect(listed.body.objects.map((o: any) => o.tenant)).toEqual(["bob", "bob"]);

    await alice.data.update({ id, properties: { text: "alice edited" } });
    expect((await alice.query.fetchObjectById(id))?.properties.text).toBe("alice edited");

    // Deletes stay inside the tenant.
    await bob.data.deleteMany(bob.filter.byProperty("text").like("*"));
    expect((await bob.query.fetchObjects()).objects).toHaveLength(0);
    expect((await alice.query.fetchObjects()).objects).toHaveLength(1);
    expect(await alice.data.deleteById(id)).toBe(true);
    expect((await alice.query.fetchObjects()).objects).toHaveLength(0);
  });

  it("answers Weaviate's 422s: no tenant, unknown tenant, inactive tenant, tenant on a class without multi-tenancy", async () => {
    const notes = client.collections.get("Notes");
    await expect(notes.query.fetchObjects()).rejects.toThrow(/multi-tenancy enabled, but request was without tenant/);
    await expect(notes.data.insert({ properties: { text: "x" } })).rejects.toThrow(/multi-tenancy enabled, but request was without tenant/);
    await expect(notes.withTenant("nobody").query.fetchObjects()).rejects.toThrow(/tenant not found: "nobody"/);
    await expect(notes.withTenant("carol").data.insert({ properties: { text: "x" }, vectors: [1, 1, 1] })).resolves.toBeTruthy();
    await notes.tenants.deactivate("carol");
    await expect(notes.withTenant("carol").query.fetchObjects()).rejects.toThrow(/tenant not active: "carol"/);
    const batch = await notes.withTenant("carol").data.insertMany([{ properties: { text: "y" } }]);
    expect(batch.hasErrors).toBe(true);
    expect(batch.errors[0]!.message).toContain('tenant not active: "carol"');
    await notes.tenants.activate("carol");
    expect((await notes.withTenant("carol").query.fetchObjects()).objects).toHaveLength(1);

    await client.collections.create({ name: "Plain", vectorizers: weaviate.configure.vectorizer.none() });
    await expect(client.collections.get("Plain").withTenant("alice").query.fetchObjects()).rejects.toThrow(/multi-tenancy disabled, but request was with tenant/);
    expect((await call(server, "GET", "/v1/schema/Plain/tenants")).status).toBe(422);
    // A partition is not a class of its own.
    expect((await call(server, "GET", "/v1/schema/Notes@alice")).status).toBe(404);
    expect((await client.collections.listAll()).map((c) => c.name).sort()).toEqual(["Notes", "Plain"]);
  });

  it("auto-schema through a tenant adds the property to the class; removing a tenant drops its objects; survives a restart", async () => {
    const notes = client.collections.get("Notes");
    const dave = notes.withTenant("dave");
    await notes.tenants.create({ name: "dave" });
    await dave.data.insert({ properties: { text: "d", mood: "happy" }, vectors: [1, 2, 3] });
    expect((await notes.config.get()).properties.map((p) => p.name).sort()).toEqual(["mood", "text"]);
    await notes.tenants.remove("dave");
    expect(await notes.tenants.getByName("dave")).toBeNull();
    await notes.tenants.create({ name: "dave" });
    expect((await dave.query.fetchObjects()).objects).toHaveLength(0);
    await dave.data.insert({ properties: { text: "again" }, vectors: [3, 2, 1] });

    await client.close();
    await server.close();
    server = await startServer({}, { cacheDir: SHARED_CACHE_DIR, grpcPort: 0, dataDir });
    client = await connect(server);
    const again = client.collections.get("Notes");
    expect(Object.keys(await again.tenants.get()).sort()).toEqual(["alice", "bob", "carol", "dave"]);
    expect((await again.withTenant("dave").query.nearVector([3, 2, 1], { limit: 3 })).objects.map((o) => o.properties.text)).toEqual(["again"]);
    expect((await again.config.get()).properties.map((p) => p.name).sort()).toEqual(["mood", "text"]);
    await client.collections.delete("Notes");
    expect((await call(server, "GET", "/v1/objects?class=Notes&tenant=dave")).status).toBe(422);
  });
});
