// The one reader of `Authorization: Bearer <token>` (RFC 6750 §2.1; the scheme is
// case-insensitive). The API token, dashboard-less scripts and the cluster join token all use it.

/** The token in an Authorization header, or undefined when there is none or it is not Bearer. */
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
}
