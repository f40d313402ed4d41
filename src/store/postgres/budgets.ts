import type { BudgetCoordinator } from "../../engine/shared-budget.js";
import type { PgDatabase } from "./db.js";

/**
 * Shared rate budgets in PostgreSQL: how many live workers have each provider (from the `workers` heartbeats), so each
 * spends 1/N of the provider's rpm and tpm, and the provider's pause (`provider_pauses`), so a Retry-After seen by one
 * worker holds them all, and one send schedule per provider (`provider_slots`) that spaces every worker's requests
 * 60 s ÷ rpm apart. `refresh` reads the first two; the store calls it on every heartbeat, so shares follow workers coming
 * and going within a heartbeat.
 */
export class PgBudgets implements BudgetCoordinator {
  private members = new Map<string, number>();
  private pauses = new Map<string, number>();

  constructor(private readonly db: PgDatabase) {}

  /** Re-reads live workers per provider (seen within `deadAfterMs` of `now`) and every pause in force. */
  async refresh(now: number, deadAfterMs: number): Promise<void> {
    const members = new Map<string, number>();
    for (const r of await this.db.rows<{ provider: string; n: number }>(
      `SELECT p AS provider, count(*)::int AS n FROM workers, unnest(providers) AS p WHERE last_seen >= $1 GROUP BY p`,
      [now - deadAfterMs],
    )) {
      members.set(r.provider, r.n);
    }
    this.members = members;
    const pauses = new Map<string, number>();
    for (const r of await this.db.rows<{ provider: string; paused_until: number }>(`SELECT provider, paused_until FROM provider_pauses WHERE paused_until > $1`, [now])) {
      pauses.set(r.provider, r.paused_until);
    }
    this.pauses = pauses;
  }

  share(provider: string): number {
    return 1 / Math.max(1, this.members.get(provider) ?? 1);
  }

  pausedUntil(provider: string): number {
    return this.pauses.get(provider) ?? 0;
  }

  /**
   * One send schedule per provider in `provider_slots`: `next_at` (unix ms, PostgreSQL's clock) is the first free
   * slot; a reservation takes max(next_at, now) and moves next_at one interval on, under the row's lock, so
   * concurrent workers get distinct slots `intervalMs` apart. Times come from the database's clock, so machines with
   * skewed clocks still space their sends evenly.
   */
  async reserveSlot(provider: string, intervalMs: number): Promise<number> {
    const [row] = await this.db.rows<{ wait_ms: number }>(
      `INSERT INTO provider_slots AS s (provider, next_at) VALUES ($1, extract(epoch FROM clock_timestamp()) * 1000 + $2)
       ON CONFLICT (provider) DO UPDATE SET next_at = GREATEST(s.next_at, extract(epoch FROM clock_timestamp()) * 1000) + $2
       RETURNING (next_at - $2 - extract(epoch FROM clock_timestamp()) * 1000)::float8 AS wait_ms`,
      [provider, intervalMs],
    );
    return Math.max(0, row?.wait_ms ?? 0);
  }

  async pause(provider: string, until: number): Promise<void> {
    this.pauses.set(provider, Math.max(until, this.pauses.get(provider) ?? 0));
    await this.db.rows(
      `INSERT INTO provider_pauses (provider, paused_until) VALUES ($1, $2)
       ON CONFLICT (provider) DO UPDATE SET paused_until = GREATEST(provider_pauses.paused_until, excluded.paused_until)`,
      // BIGINT column: a Retry-After in ms may be fractional, which PostgreSQL refuses.
      [provider, Math.ceil(until)],
    );
  }
}
