import type { StoredObject } from "../store/collection-store.js";
import type { ClassState, CollectionContext } from "./collection-context.js";
import { isLengthPath } from "./extra-filters.js";
import { filterIndexOf, type FilterColumn, type FilterIndex, type FilterRecord } from "./filter-index.js";
import { isTimestampPath } from "./meta-filters.js";
import { normalizePropertyName } from "./schema.js";
import { compileWhere, tokenize, type Predicate } from "./where-filter.js";

/*
 * A `where` filter turned into an allow-list (the seqs of the objects it lets through) over the class's filterable
 * index (filter-index.ts), the way Weaviate's searcher builds an allow-list from its filterable buckets before a
 * vector search. Leaves the index keys answer by set operations:
 *   - text properties, by the property's tokenization: Equal / NotEqual / ContainsAny / ContainsAll / ContainsNone
 *     (every token of a value present), Like (each pattern matched by some token of the object);
 *   - int / number / date: Equal / NotEqual / Contains*, GreaterThan[Equal] / LessThan[Equal] over the sorted values;
 *   - boolean / uuid: Equal / NotEqual / Contains*; IsNull on any held property; `_id` Equal / ContainsAny;
 * And / Or / Not combine them. Any other leaf on what the index holds (`_id` ranges, `_creationTimeUnix`,
 * `_lastUpdateTimeUnix`, `len(prop)`, WithinGeoRange, Like on non-text) runs the evaluator (where-filter.ts) over the
 * records held in memory, on the candidates the other operands of an And left. A filter on anything the index does
 * not hold (a property with `indexFilterable: false`, a reference, a path it does not know) scans the store with the
 * evaluator, as before. Either way the answer is the evaluator's (test/filter-index.test.ts checks this on random
 * objects and filters).
 */

type Node = Record<string, unknown>;
type Key = string | number | boolean;

const VALUE_KEYS = ["valueText", "valueString", "valueInt", "valueNumber", "valueBoolean", "valueDate"] as const;
const ARRAY_VALUE_KEYS = ["valueTextArray", "valueStringArray", "valueIntArray", "valueNumberArray", "valueBooleanArray", "valueDateArray"] as const;
const CONTAINS = new Set(["ContainsAny", "ContainsAll", "ContainsNone"]);
const RANGES = new Set(["GreaterThan", "GreaterThanEqual", "LessThan", "LessThanEqual"]);
const LENGTH_PATH = /^len\((.+)\)$/;

const isNode = (v: unknown): v is Node => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The seqs of the class's objects `where` lets through: from the filterable index where the filter only reads what it
 * holds, else by scanning the store with `predicate` (the evaluator compiled from the same `where`).
 * @param where a filter `compileWhere` accepted (it is not validated again).
 * @throws Error when the store cannot be read.
 */
export async function allowListOf(ctx: CollectionContext, st: ClassState, where: unknown, predicate: Predicate): Promise<Set<number>> {
  const idx = await filterIndexOf(ctx, st);
  const reach = reachOf(where, idx);
  if (reach !== null && reach.timestamps && idx.untimed.size > 0) await fillTimes(ctx, st, idx);
  if (reach !== null && !(reach.timestamps && idx.untimed.size > 0)) {
    const plan = new Planner(idx, st);
    try {
      const got = plan.node(where as Node, null);
      return plan.borrowed.has(got) ? new Set(got) : (got as Set<number>);
    } catch {
      // The evaluator failed on a leaf over some record; the scan below fails (or not) exactly as it would.
    }
  }
  const out = new Set<number>();
  await ctx.scan(st, predicate, (o) => (out.add(o.seq), true));
  return out;
}

/**
 * The objects `where` lets through in seq (insertion) order after `afterSeq`, at most `limit`: the allow-list, then
 * only those objects read from the store.
 * @throws Error when the store cannot be read.
 */
export async function filteredObjects(ctx: CollectionContext, st: ClassState, where: unknown, predicate: Predicate, afterSeq: number, limit: number, withVectors: boolean): Promise<StoredObject[]> {
  const seqs = Float64Array.from(await allowListOf(ctx, st, where, predicate)).sort();
  let from = 0;
  while (from < seqs.length && seqs[from]! <= afterSeq) from++;
  const chosen = Array.from(seqs.subarray(from, Math.min(seqs.length, from + limit)));
  const out: StoredObject[] = [];
  for (let i = 0; i < chosen.length; i += 1000) {
    const page = chosen.slice(i, i + 1000);
    const bySeq = new Map((await ctx.options.store.objectsBySeq(st.def.class, page, withVectors)).map((o) => [o.seq, o]));
    // An object deleted since the allow-list was made is left out.
    for (const seq of page) if (bySeq.has(seq)) out.push(bySeq.get(seq)!);
  }
  return out;
}

/** Whether every leaf reads only what the index holds (null: not), and whether some leaf reads timestamps. */
function reachOf(node: unknown, idx: FilterIndex): { timestamps: boolean } | null {
  if (!isNode(node)) return null;
  const op = node.operator;
  if (op === "And" || op === "Or" || op === "Not") {
    if (!Array.isArray(node.operands) || node.operands.length === 0) return null;
    let timestamps = false;
    for (const o of node.operands) {
      const r = reachOf(o, idx);
      if (!r) return null;
      timestamps ||= r.timestamps;
    }
    return { timestamps };
  }
  if (!Array.isArray(node.path) || node.path.length !== 1 || typeof node.path[0] !== "string") return null;
  const name = node.path[0];
  if (name === "id" || name === "_id") return { timestamps: false };
  if (isTimestampPath(name)) return { timestamps: true };
  if (isLengthPath(name)) return idx.holds(normalizePropertyName(LENGTH_PATH.exec(name)![1]!.trim())) ? { timestamps: false } : null;
  return idx.holds(normalizePropertyName(name)) ? { timestamps: false } : null;
}

/** Reads the timestamps of the objects indexed without them (the batch hook does not carry them). */
async function fillTimes(ctx: CollectionContext, st: ClassState, idx: FilterIndex): Promise<void> {
  const pending = new Map<number, FilterRecord>();
  for (const seq of idx.untimed) pending.set(seq, idx.records.get(seq)!);
  const seqs = [...pending.keys()];
  for (let i = 0; i < seqs.length; i += 1000) {
    for (const o of await ctx.options.store.objectsBySeq(st.def.class, seqs.slice(i, i + 1000), false)) {
      const rec = pending.get(o.seq);
      if (rec) idx.setTimes(o.seq, rec, o.created_at, o.updated_at);
    }
  }
}

function intersect(a: ReadonlySet<number>, b: ReadonlySet<number>): Set<number> {
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  const out = new Set<number>();
  for (const x of small) if (large.has(x)) out.add(x);
  return out;
}

function union(sets: readonly ReadonlySet<number>[]): Set<number> {
  const out = new Set<number>(sets[0]);
  for (let i = 1; i < sets.length; i++) for (const x of sets[i]!) out.add(x);
  return out;
}

/** The one value (or list, for Contains*) of a leaf, as the evaluator picks it; undefined when it would not. */
function rawValue(node: Node, op: string): unknown {
  const keys: readonly string[] = CONTAINS.has(op) ? [...ARRAY_VALUE_KEYS, ...VALUE_KEYS] : VALUE_KEYS;
  const present = keys.filter((k) => node[k] !== undefined && node[k] !== null);
  return present.length === 1 ? node[present[0]!] : undefined;
}

/** One evaluation of a filter tree over an index (sets it hands out from the index are marked borrowed). */
class Planner {
  readonly borrowed = new WeakSet<ReadonlySet<number>>();
  private all: Set<number> | null = null;

  constructor(
    private readonly idx: FilterIndex,
    private readonly st: ClassState,
  ) {}

  private everything(): ReadonlySet<number> {
    if (!this.all) {
      this.all = new Set(this.idx.records.keys());
      this.borrowed.add(this.all);
    }
    return this.all;
  }

  private lend(s: ReadonlySet<number>): ReadonlySet<number> {
    this.borrowed.add(s);
    return s;
  }

  private minus(base: ReadonlySet<number>, drop: ReadonlySet<number>): Set<number> {
    const out = new Set<number>();
    for (const x of base) if (!drop.has(x)) out.add(x);
    return out;
  }

  /** The objects of `within` (all when null) that `node` lets through. */
  node(node: Node, within: ReadonlySet<number> | null): ReadonlySet<number> {
    const op = node.operator as string;
    const operands = node.operands as Node[];
    if (op === "Or") return union(operands.map((o) => this.node(o, within)));
    if (op === "Not") return this.minus(within ?? this.everything(), union(operands.map((o) => this.node(o, within))));
    if (op === "And") {
      // Index lookups first, then nested trees, then the evaluator over what is left.
      let cur = within;
      const nested: Node[] = [];
      const evaluated: Node[] = [];
      for (const o of operands) {
        if (o.operator === "And" || o.operator === "Or" || o.operator === "Not") nested.push(o);
        else {
          const hit = this.leaf(o);
          if (hit) cur = cur ? intersect(cur, hit) : hit;
          else evaluated.push(o);
        }
      }
      for (const o of nested) cur = this.node(o, cur);
      for (const o of evaluated) cur = this.evaluate(o, cur);
      return cur ?? this.everything();
    }
    const hit = this.leaf(node);
    if (!hit) return this.evaluate(node, within);
    return within ? intersect(within, hit) : hit;
  }

  /** A leaf by the evaluator over the held records. */
  private evaluate(node: Node, within: ReadonlySet<number> | null): Set<number> {
    const test = compileWhere(node, this.st.def);
    const out = new Set<number>();
    const records = this.idx.records;
    if (within) {
      for (const seq of within) if (test(records.get(seq)!)) out.add(seq);
    } else {
      for (const [seq, rec] of records) if (test(rec)) out.add(seq);
    }
    return out;
  }

  /** A leaf by index lookups; null when the index does not answer it that way. */
  private leaf(node: Node): ReadonlySet<number> | null {
    const op = node.operator as string;
    const name = (node.path as string[])[0]!;
    if (name === "id" || name === "_id") return this.idLeaf(node, op);
    if (isTimestampPath(name) || isLengthPath(name)) return null;
    const prop = this.idx.property(normalizePropertyName(name));
    const col = prop ? this.idx.column(prop.name) : null;
    if (!prop || !col || col.irregular > 0) return null;
    if (op === "IsNull") {
      if (typeof node.valueBoolean !== "boolean") return null;
      return node.valueBoolean ? this.minus(this.everything(), col.present) : this.lend(col.present);
    }
    const raw = rawValue(node, op);
    if (raw === undefined) return null;
    const values = Array.isArray(raw) ? raw : [raw];
    const keys: Key[] = [];
    for (const v of values) {
      const k = this.keyOf(col, v);
      if (k === null) return null;
      keys.push(k);
    }
    // No value for an operator that takes one: the evaluator's own behaviour, whatever it is.
    if (keys.length === 0 && !CONTAINS.has(op)) return null;
    if (op === "Like") return col.kind === "text" && keys.length === 1 ? this.like(col, String(keys[0]), prop.tokenization) : null;
    if (RANGES.has(op)) return (col.kind === "number" || col.kind === "date") && keys.length === 1 ? this.range(col, op, keys[0] as number) : null;
    const equal = (k: Key): ReadonlySet<number> => (col.kind === "text" ? this.tokensEqual(col, tokenize(String(k), prop.tokenization)) : this.lend(col.get(k)));
    switch (op) {
      case "Equal":
        return equal(keys[0]!);
      case "NotEqual":
        return this.minus(this.everything(), equal(keys[0]!));
      case "ContainsAny":
        return union(keys.map(equal));
      case "ContainsAll":
        return keys.length === 0 ? this.lend(col.present) : keys.map(equal).reduce((a, b) => intersect(a, b));
      case "ContainsNone":
        return this.minus(this.everything(), union(keys.map(equal)));
      default:
        return null;
    }
  }

  /** A filter value in the column's terms (the evaluator's coercion); null when it would not accept it. */
  private keyOf(col: FilterColumn, v: unknown): Key | null {
    switch (col.kind) {
      case "number":
        return typeof v === "number" ? v : null;
      case "boolean":
        return typeof v === "boolean" ? v : null;
      case "date": {
        const t = typeof v === "string" ? Date.parse(v) : NaN;
        return Number.isNaN(t) ? null : t;
      }
      case "uuid":
        return typeof v === "string" ? v.toLowerCase() : null;
      case "text":
        return typeof v === "string" ? v : null;
    }
  }

  /** Objects holding every one of `tokens` (none for no tokens). */
  private tokensEqual(col: FilterColumn, tokens: string[]): ReadonlySet<number> {
    if (tokens.length === 0) return new Set();
    const sets = [...new Set(tokens)].map((t) => col.get(t)).sort((a, b) => a.size - b.size);
    if (sets.length === 1) return this.lend(sets[0]!);
    return sets.reduce((a, b) => intersect(a, b));
  }

  private range(col: FilterColumn, op: string, f: number): Set<number> {
    const keys = col.sortedKeys();
    // First index whose key is >= f (lo) and > f (hi).
    const bound = (strict: boolean) => {
      let l = 0, h = keys.length;
      while (l < h) {
        const m = (l + h) >> 1;
        if (strict ? keys[m]! <= f : keys[m]! < f) l = m + 1;
        else h = m;
      }
      return l;
    };
    const [from, to] = op === "GreaterThan" ? [bound(true), keys.length] : op === "GreaterThanEqual" ? [bound(false), keys.length] : op === "LessThan" ? [0, bound(false)] : [0, bound(true)];
    const out = new Set<number>();
    for (let i = from; i < to; i++) for (const seq of col.get(keys[i]!)) out.add(seq);
    return out;
  }

  /** Like on a text column: every pattern (`*` any run, `?` one character) matches some token of the object. */
  private like(col: FilterColumn, value: string, tokenization: string | undefined): ReadonlySet<number> {
    const ci = tokenization === undefined || tokenization === "word" || tokenization === "lowercase";
    const patterns = tokenization === "field" ? [value] : value.split(/\s+/).filter(Boolean);
    if (patterns.length === 0) return this.lend(col.present);
    const matched = patterns.map((p) => {
      const source = (ci ? p.toLowerCase() : p).replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
      const re = new RegExp(`^${source}$`, ci ? "iu" : "u");
      const hits: ReadonlySet<number>[] = [];
      for (const [token, seqs] of col.postings) if (re.test(String(token))) hits.push(seqs);
      return union(hits);
    });
    return matched.reduce((a, b) => intersect(a, b));
  }

  private idLeaf(node: Node, op: string): ReadonlySet<number> | null {
    if (op !== "Equal" && op !== "ContainsAny") return null;
    const raw = rawValue(node, op);
    if (raw === undefined) return null;
    const out = new Set<number>();
    // Equal compares with the first value only, as the evaluator does.
    const values = Array.isArray(raw) ? raw : [raw];
    if (values.length === 0 && op === "Equal") return null;
    for (const v of op === "Equal" ? values.slice(0, 1) : values) {
      const seq = this.idx.seqOfId.get(String(v).toLowerCase());
      if (seq !== undefined) out.add(seq);
    }
    return out;
  }
}
