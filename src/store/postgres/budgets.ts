import type { BudgetCoordinator } from "../../engine/shared-budget.js";
import type { PgDatabase } from "./db.js";

/**
 * Shared rate budgets in PostgreSQL: how many live workers have each provider (from the `workers` heartbeats), so each
 * spends 1/N of the provider's rpm and tpm, and the provider's pause (`provider_pauses`), so a Retry-After seen by one
 * worker holds them all. `refresh` reads both; the store calls it on every heartbeat, so shares follow workers coming
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
