// What the inventory's callers may see go wrong, in the inventory's own terms. SQLite's result
// codes stop at the store boundary (database.ts): a handler or the CLI tells a full disk from a
// missing node by these codes, never by a driver's error string.

export type InventoryErrorCode =
  /** No machine with that MAC. */
  | 'not_found'
  /** The change contradicts what is stored (a host name in use, no role yet). */
  | 'conflict'
  /** The file's schema is newer than this Genesis knows. */
  | 'schema_too_new'
  /** The file's schema is older (a read-only open does not upgrade it). */
  | 'schema_too_old'
  /** The inventory holds `inventory.max_nodes` machines already. */
  | 'full'
  /** The data disk is full: nothing was changed. */
  | 'storage_full'
  /** The file or its directory is read-only: nothing was changed. */
  | 'storage_read_only'
  /** The file cannot be read or written now (locked, read-only, damaged, not a database). */
  | 'storage_unavailable';

export class InventoryError extends Error {
  readonly code: InventoryErrorCode;
  /** For a storage failure: the driver's own code (SQLITE_IOERR_WRITE...), for the log only. */
  readonly storageCode: string | undefined;
  /**
   * For a storage failure after the commit: the change is in the file but the disk did not confirm
   * it (a failed fdatasync of the WAL), so it may or may not survive a power cut.
   */
  readonly unconfirmed: boolean;
  constructor(code: InventoryErrorCode, message: string, storageCode?: string, opts: { unconfirmed?: boolean } = {}) {
    super(message);
    this.code = code;
    this.storageCode = storageCode;
    this.unconfirmed = opts.unconfirmed ?? false;
  }

  /** The disk or the file failed, not the request: retry later; nothing was changed, unless `unconfirmed`. */
  get isStorageFailure(): boolean {
    return this.code.startsWith('storage_');
  }
}

/** SQLite result codes that mean "the disk or the lock", not "the request". */
const STORAGE_CODES = /^SQLITE_(FULL|BUSY|LOCKED|IOERR|READONLY|CANTOPEN|CORRUPT|NOTADB|PROTOCOL)/;

/** A driver error as the inventory's own; anything else (a bug, a domain error) unchanged. */
export function translateStorageError(err: unknown): unknown {
  if (err instanceof InventoryError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !STORAGE_CODES.test(code)) return err;
  const kind = code === 'SQLITE_FULL' ? 'storage_full' : code.startsWith('SQLITE_READONLY') ? 'storage_read_only' : 'storage_unavailable';
  return new InventoryError(kind, (err as Error).message, code);
}

/**
 * What a machine or client is told of a storage failure: what failed and whether anything changed,
 * in one line (the driver's message and code are for the log).
 */
export function storageFailureMessage(err: InventoryError): string {
  if (err.unconfirmed) return 'the inventory could not confirm the change on the data disk; ask again';
  return err.code === 'storage_full' ? 'the data disk is full; nothing was changed' : 'the inventory database is unavailable; nothing was changed';
}
