// One error shape for every route: { "error": code, "message": human text }. Bad input is a
// 4xx with a message that says what to fix; storage trouble is a 503 (retry later); only a
// real bug is a 500, and its details go to the log, not to the client.

import type { FastifyError, FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { ChangeError } from '../inventory/changes.ts';
import { InventoryError, storageFailureMessage, translateStorageError } from '../inventory/errors.ts';
import { LogThrottle } from '../logging/throttle.ts';
import { SecretsError } from '../talos/secrets.ts';

export type ErrorBody = { error: string; message: string };

export class HttpError extends Error {
  readonly statusCode: number;
  readonly code: string;
  /** More fields of the answer beside error and message (the fleet's problems, each with file:line:col). */
  readonly details: Record<string, unknown> | undefined;
  constructor(statusCode: number, code: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.statusCode = statusCode;
    this.code = code;
    this.details = details;
  }
}

const FRAMEWORK_ERRORS: Record<string, ErrorBody> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { error: 'unsupported_media_type', message: 'send the body as application/json' },
  FST_ERR_CTP_INVALID_JSON_BODY: { error: 'invalid_json', message: 'the body is not valid JSON' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { error: 'invalid_json', message: 'the body is empty; send a JSON object' },
  FST_ERR_CTP_BODY_TOO_LARGE: { error: 'body_too_large', message: 'the body is larger than the 64 KiB the API accepts' },
};

type AjvError = { keyword: string; instancePath: string; message?: string; params: Record<string, unknown> };

/** The first schema violation, in words: which field, and what it must be. */
function describeValidation(context: string, errors: AjvError[]): string {
  const e = errors[0];
  if (!e) return `${context} is invalid`;
  const where = e.instancePath ? `${context} field ${e.instancePath.slice(1).replace(/\//g, '.')}` : context;
  switch (e.keyword) {
    case 'additionalProperties':
      return `${where}: unknown field ${JSON.stringify(e.params.additionalProperty)}`;
    case 'enum':
      return `${where} must be one of: ${(e.params.allowedValues as unknown[]).join(', ')}`;
    default:
      return `${where} ${e.message ?? 'is invalid'}`;
  }
}

export function installErrorHandling(app: FastifyInstance, opts: { now?: () => number } = {}): void {
  // A full disk or a broken secrets file fails every request until it is mended: the first
  // failure is logged at once, the rest in a summary a minute, not one error line per request.
  const failures = new LogThrottle(app.log as Logger, { level: 'error', now: opts.now });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: 'not_found', message: `no route for ${req.method} ${req.url.split('?')[0]}` });
  });

  app.setErrorHandler((raised: FastifyError, req, reply) => {
    // The bootstrap lock's store shares the inventory's file: its storage failures read the same.
    const err = translateStorageError(raised) as FastifyError;
    if (err.validation) {
      return reply.code(400).send({ error: 'invalid_request', message: describeValidation(err.validationContext ?? 'request', err.validation) });
    }
    if (err instanceof HttpError) return reply.code(err.statusCode).send({ error: err.code, message: err.message, ...err.details });
    if (err instanceof ChangeError) return reply.code(400).send({ error: 'invalid_request', message: err.message });
    if (err instanceof SecretsError) {
      failures.note('secrets-unavailable', 'secrets', { reason: err.message, reqId: req.id }, 'cluster secrets unavailable: answered 503 (repeats are summarised once a minute)');
      return reply.code(503).send({ error: 'secrets_unavailable', message: err.message });
    }
    if (err instanceof InventoryError && err.isStorageFailure) {
      const outcome = err.unconfirmed ? 'the change is in the file but the disk did not confirm it' : 'nothing changed';
      failures.note(`storage-${err.storageCode ?? err.code}`, 'inventory', { code: err.storageCode, reason: err.message, reqId: req.id }, `inventory storage error: answered 503, ${outcome} (repeats are summarised once a minute)`);
      return reply.code(503).header('retry-after', '10').send({ error: 'storage_unavailable', message: storageFailureMessage(err) });
    }
    if (err instanceof InventoryError) {
      const status = err.code === 'not_found' ? 404 : err.code === 'conflict' ? 409 : 503;
      return reply.code(status).send({ error: err.code, message: err.message });
    }
    // Errors fastify raises for the request itself (bad JSON, wrong content type, too large).
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const known = FRAMEWORK_ERRORS[err.code];
      return reply.code(status).send(known ?? { error: 'bad_request', message: err.message });
    }
    req.log.error({ err }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error; see the Genesis log' });
  });
}
