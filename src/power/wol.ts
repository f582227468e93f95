// The Wake-on-LAN magic packet (AMD's Magic Packet technology white paper): six 0xFF bytes, then
// the target MAC sixteen times; 102 bytes, sent as a UDP broadcast (port 9, "discard", by
// convention). A NIC in its low-power state matches the pattern anywhere in a frame. Pure.

export const MAGIC_PACKET_SIZE = 102;

export function magicPacket(mac: string): Buffer {
  const bytes = mac.split(':').map((h) => Number.parseInt(h, 16));
  if (bytes.length !== 6 || bytes.some((b) => !Number.isInteger(b) || b < 0 || b > 255)) throw new Error(`not a MAC address: ${mac}`);
  const packet = Buffer.alloc(MAGIC_PACKET_SIZE, 0xff);
  for (let i = 0; i < 16; i++) packet.set(bytes, 6 + i * 6);
  return packet;
}
