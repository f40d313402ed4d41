import type { FastifyPluginAsync } from "fastify";
import type { CollectionService } from "../../collections/collection-service.js";

/**
 * Weaviate's tenant endpoints of a multi-tenant class (collections/tenants.ts): `GET /v1/schema/{class}/tenants` →
 * `[{name, activityStatus}]`; `POST` (create; body `[{name, activityStatus?}]`, existing tenants kept), `PUT` (set
 * `activityStatus`: ACTIVE/HOT or INACTIVE/COLD) and `DELETE` (body `["name", …]`) of the same;
 * `GET /v1/schema/{class}/tenants/{name}` (404 with no body when absent) and `HEAD` of it (200/404).
 * Errors are 422 (no class, multi-tenancy disabled, bad list or status, unknown tenant on PUT) or 403, in Weaviate's shape.
 */
export const weaviateTenantRoutes: FastifyPluginAsync<{ collections: CollectionService }> = async (app, { collections }) => {
  type ClassRoute = { Params: { className: string } };
  type TenantRoute = { Params: { className: string; tenant: string } };
  app.get<ClassRoute>("/v1/schema/:className/tenants", async (req) => collections.listTenants(req.caller, req.params.className));
  app.post<ClassRoute>("/v1/schema/:className/tenants", async (req) => collections.createTenants(req.caller, req.params.className, req.body));
  app.put<ClassRoute>("/v1/schema/:className/tenants", async (req) => collections.updateTenants(req.caller, req.params.className, req.body));
  app.delete<ClassRoute>("/v1/schema/:className/tenants", async (req, reply) => {
    await collections.deleteTenants(req.caller, req.params.className, req.body);
    return reply.status(200).send();
  });
  app.get<TenantRoute>("/v1/schema/:className/tenants/:tenant", { exposeHeadRoute: false }, async (req, reply) => {
    const t = collections.getTenant(req.caller, req.params.className, req.params.tenant);
    return t ?? reply.status(404).send();
  });
  app.head<TenantRoute>("/v1/schema/:className/tenants/:tenant", async (req, reply) =>
    reply.status(collections.getTenant(req.caller, req.params.className, req.params.tenant) ? 200 : 404).send(),
  );
};
