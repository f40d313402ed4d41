/** The logger the engine writes to: pino's call shape (`log.info({ ...fields }, "message")`). */
export interface Log {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** A logger that drops everything (tests, library use). */
export const silentLog: Log = { info() {}, warn() {}, error() {} };
