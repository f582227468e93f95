// MAC addresses as the inventory keys them: lower-case, colon-separated. Firmware, iPXE, DHCP
// servers and operators write them differently; everything is normalised on the way in.

const HEX12 = /^[0-9a-f]{12}$/;

/**
 * Accepts `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff`, `aabb.ccdd.eeff` and `aabbccddeeff`, any case.
 * Returns the canonical form, or undefined for anything else (including multicast addresses,
 * which no NIC boots from).
 */
export function normalizeMac(input: string): string | undefined {
  if (typeof input !== 'string') return undefined;
  const s = input.trim().toLowerCase();
  if (s.length > 17) return undefined;
  let hex: string;
  if (/^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/.test(s)) hex = s.replace(/[:-]/g, '');
  else if (/^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/.test(s)) hex = s.replace(/\./g, '');
  else hex = s;
  if (!HEX12.test(hex)) return undefined;
  if (parseInt(hex.slice(0, 2), 16) & 1) return undefined; // multicast/broadcast bit
  return hex.match(/../g)!.join(':');
}
