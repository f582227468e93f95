// The secrets bundle, encrypted with the operator's passphrase in the format of `openssl enc
// -aes-256-cbc -pbkdf2 -iter N -md sha256`: "Salted__", an 8-byte salt, then the ciphertext; key
// and IV from PBKDF2-HMAC-SHA256. So the copy beside each etcd snapshot opens with openssl alone,
// on any machine, years later, without Genesis:
//
//   openssl enc -d -aes-256-cbc -pbkdf2 -iter 600000 -md sha256 -in <file> -pass file:<passphrase file>
//
// Pure apart from the random salt and readPassphraseFile.

export const MIN_PASSPHRASE_LENGTH = 12;

import { createCipheriv, pbkdf2, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/** OWASP's 2023 figure for PBKDF2-HMAC-SHA256; about a quarter second here, once per snapshot. */
export const PBKDF2_ITERATIONS = 600_000;
const MAGIC = Buffer.from('Salted__', 'ascii');

export function opensslDecryptCommand(file: string, passphraseFile: string): string {
  return `openssl enc -d -aes-256-cbc -pbkdf2 -iter ${PBKDF2_ITERATIONS} -md sha256 -in ${file} -pass file:${passphraseFile}`;
}

/** Key derivation runs on the thread pool: a quarter second of PBKDF2 must not stall boot requests. */
export async function encryptForOpenssl(plaintext: Buffer, passphrase: string, salt: Buffer = randomBytes(8)): Promise<Buffer> {
  const derived = await pbkdf2Async(Buffer.from(passphrase, 'utf8'), salt, PBKDF2_ITERATIONS, 48, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', derived.subarray(0, 32), derived.subarray(32, 48));
  return Buffer.concat([MAGIC, salt, cipher.update(plaintext), cipher.final()]);
}

export class PassphraseError extends Error {}

/** openssl's `-pass file:` takes the file's first line; so does Genesis. */
export function passphraseFromFile(text: string): string {
  return text.split(/\r?\n/, 1)[0] ?? '';
}

/** The passphrase from `backup.secrets_passphrase_file`, or a one-line reason it cannot be used. */
export function readPassphraseFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PassphraseError(`backup.secrets_passphrase_file (${file}): cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const passphrase = passphraseFromFile(text);
  if (passphrase.length < MIN_PASSPHRASE_LENGTH) {
    throw new PassphraseError(`backup.secrets_passphrase_file (${file}): the first line must be a passphrase of ${MIN_PASSPHRASE_LENGTH} characters or more`);
  }
  return passphrase;
}
