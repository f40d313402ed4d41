import type { FastifyPluginAsync } from "fastify";
import { CollectionError } from "../../collections/errors.js";
import { MAX_NESTING_DEPTH, nestsDeeperThan } from "../../core/nesting.js";
import type { Caller, CollectionService } from "../../collections/collection-service.js";
import type { ClassDef } from "../../collections/schema.js";
import { GraphQLError, keyOf, loc, parseDocument, selectOperation, toJson, type Field } from "./graphql-parser.js";
import { GET_ARGS, runGet, validateGetSelections } from "./graphql-get.js";
import { classLookup } from "./graphql-references.js";
import { runAggregate, validateAggregateSelections } from "./graphql-aggregate.js";
import { refuseAggregateArguments, refuseGetArguments } from "./graphql-arguments.js";

export { parseQuery } from "./graphql-parser.js";

/**
 * `POST /v1/graphql` with the subset of Weaviate's GraphQL that clients use for search, parsed by hand:
 * `{ Get { Class(nearVector:{vector:[…], distance?, certainty?} | nearText:{concepts:[…], …} | nearObject:{id},
 * where:{…}, limit:N, offset:N, after:"uuid") { prop … _additional { id distance certainty vector creationTimeUnix
 * lastUpdateTimeUnix score explainScore } } } }` (and bm25 / hybrid / sort / autocut, search-args.ts) and
 * `{ Aggregate { Class(where, groupBy, nearVector / nearText / nearObject / hybrid + objectLimit) { meta { count }
 * groupedBy { value path } prop { metrics } } } }` (aggregate.ts). Several named operations (one picked by
 * `operationName`), variables with their definitions' defaults, aliases and commas are understood, and references as
 * inline fragments (`ref { ... on Class { … } }`, graphql-references.ts); named fragments are not. An argument no
 * field takes is an error (graphql-arguments.ts). Answers are
 * `{data:{Get:{Class:[…]}}, errors?:[{message, locations?, path?}]}` (no `data` when the query did not run), always
 * with status 200.
 */

interface GraphQLAnswer {
  /** Left out when the query did not run (a parse or validation error), as Weaviate's response omits an empty `data`. */
  data?: Record<string, unknown>;
  errors?: { message: string; locations?: { line: number; column: number }[]; path?: string[] }[];
}

const errorEntry = (e: GraphQLError) => ({ message: e.message, ...(e.location ? { locations: [e.location] } : {}), ...(e.path ? { path: e.path } : {}) });

/**
 * Runs a query (the operation `operationName` names, or its only one) against the collections as `caller` (owner
 * fingerprint of its key; null with auth off). Never throws: problems are `errors`, a class the caller may not read
 * among them (Weaviate's 403 message, the query not run).
 */
export async function executeQuery(service: CollectionService, caller: Caller, query: unknown, variables: unknown, operationName?: unknown): Promise<GraphQLAnswer> {
  if (typeof query !== "string" || !query.trim()) return { errors: [{ message: "query must be a non-empty string" }] };
  // The parser and the where-filter reader recurse: refuse deep selections and filters before they overflow the stack.
  if (nestsDeeperThan(query)) return { errors: [{ message: `the query nests selections, arguments or filters more than ${MAX_NESTING_DEPTH} levels deep` }] };
  const given = typeof variables === "object" && variables !== null && !Array.isArray(variables) ? (variables as Record<string, unknown>) : {};
  let fields: Field[];
  let vars: Record<string, unknown>;
  try {
    const op = selectOperation(parseDocument(query), operationName);
    fields = op.selections;
    // A variable the request leaves out takes its definition's default.
    vars = { ...Object.fromEntries([...op.defaults].map(([k, v]) => [k, toJson(v, {})])), ...given };
  } catch (err) {
    if (err instanceof GraphQLError) return { errors: [errorEntry(err)] };
    throw err;
  }
  // Validation (unknown classes, fields, arguments) fails the whole query, as graphql-go does.
  try {
    for (const f of fields) validateRoot(service, caller, f);
  } catch (err) {
    if (err instanceof GraphQLError) return { errors: [errorEntry(err)] };
    throw err;
  }
  const data: Record<string, unknown> = {};
  const errors: GraphQLError[] = [];
  for (const root of fields) {
    const out: Record<string, unknown> = {};
    data[keyOf(root)] = out;
    for (const f of root.selections!) {
      const path = [keyOf(root), keyOf(f)];
      try {
        out[keyOf(f)] = root.name === "Get" ? await runGet(service, caller, f, vars) : await runAggregate(service, caller, f, vars);
      } catch (err) {
        out[keyOf(f)] = null;
        if (err instanceof GraphQLError) errors.push(new GraphQLError(err.message, err.location ?? loc(f), path));
        else if (err instanceof CollectionError) errors.push(new GraphQLError(err.message, loc(f), path));
        else throw err;
      }
    }
  }
  return errors.length ? { data, errors: errors.map(errorEntry) } : { data };
}

function validateRoot(service: CollectionService, caller: Caller, root: Field): void {
  if (root.name !== "Get" && root.name !== "Aggregate") throw new GraphQLError(`Cannot query field "${root.name}" on type "WeaviateObj".`, loc(root));
  const rootArg = root.args.keys().next();
  if (!rootArg.done) throw new GraphQLError(`Unknown argument "${rootArg.value}" on field "${root.name}" of type "WeaviateObj".`, loc(root));
  if (!root.selections) throw new GraphQLError(`Field "${root.name}" of type "${root.name}Obj" must have a sub selection.`, loc(root));
  const type = root.name === "Get" ? "GetObjectsObj" : "AggregateObjectsObj";
  for (const f of root.selections) {
    let def: ClassDef | null;
    try {
      def = service.getClass(caller, f.name);
    } catch (err) {
      // A class the caller may not read: Weaviate's 403 message, as a GraphQL error.
      if (err instanceof CollectionError) throw new GraphQLError(err.message, loc(f));
      throw err;
    }
    if (!def || def.class !== f.name) throw new GraphQLError(`Cannot query field "${f.name}" on type "${type}".`, loc(f));
    if (!f.selections) throw new GraphQLError(`Field "${f.name}" of type "[${f.name}]" must have a sub selection.`, loc(f));
    const allowedArgs = root.name === "Get" ? GET_ARGS : new Set(["where", "limit", "groupBy", "objectLimit", "nearVector", "nearText", "nearObject", "hybrid", "tenant"]);
    for (const a of f.args.keys()) if (!allowedArgs.has(a)) throw new GraphQLError(`Unknown argument "${a}" on field "${f.name}" of type "${type}".`, loc(f));
    if (root.name === "Get") {
      const classOf = classLookup(service, caller);
      validateGetSelections(def, f.selections, classOf);
      refuseGetArguments(def, f.selections, classOf);
    } else {
      validateAggregateSelections(def, f.selections);
      refuseAggregateArguments(def, f.selections);
    }
  }
}

/** `POST /v1/graphql` and `POST /v1/graphql/batch`. */
export const weaviateGraphqlRoutes: FastifyPluginAsync<{ collections: CollectionService }> = async (app, { collections }) => {
  const body = (b: unknown) => (typeof b === "object" && b !== null ? (b as { query?: unknown; variables?: unknown; operationName?: unknown }) : {});
  app.post("/v1/graphql", async (req) => {
    const b = body(req.body);
    return executeQuery(collections, req.caller, b.query, b.variables, b.operationName);
  });
  app.post("/v1/graphql/batch", async (req) => {
    if (!Array.isArray(req.body)) throw new CollectionError(422, "the body must be an array of {query} objects");
    const answers = [];
    for (const q of req.body) answers.push(await executeQuery(collections, req.caller, body(q).query, body(q).variables, body(q).operationName));
    return answers;
  });
};
