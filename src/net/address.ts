// Addresses as nodes are matched by them: the inventory records IPv4 text ("192.0.2.21"), while
// sockets may report IPv4-mapped IPv6 and Talos reports addresses with a prefix length.

/** "::ffff:192.0.2.21" → "192.0.2.21"; "192.0.2.21/24" → "192.0.2.21". */
export function sourceAddress(address: string): string {
  const bare = address.split('/')[0]!;
  return bare.toLowerCase().startsWith('::ffff:') && bare.includes('.') ? bare.slice(7) : bare;
}

/** A "host:port" client key (the TFTP server's) → the host, as nodes are matched by it. */
export function hostOfEndpoint(endpoint: string): string {
  const colon = endpoint.lastIndexOf(':');
  return sourceAddress(colon > 0 ? endpoint.slice(0, colon).replace(/^\[(.*)\]$/, '$1') : endpoint);
}

/** grpc-js's peer string ("ipv4:192.0.2.21:5000", "192.0.2.21:5000", "[::1]:5000") → the address. */
export function peerAddress(peer: string): string {
  const p = peer.replace(/^ipv[46]:/, '');
  const bracketed = /^\[([^\]]+)\]:\d+$/.exec(p);
  if (bracketed) return sourceAddress(bracketed[1]!);
  const colon = p.lastIndexOf(':');
  return sourceAddress(colon > 0 && p.indexOf(':') === colon ? p.slice(0, colon) : p);
}
