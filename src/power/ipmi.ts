// What Genesis asks a BMC through ipmitool (IPMI v2.0 "lanplus"), as arguments, and what its
// answers mean. The password is never an argument (it would show in `ps`): ipmitool's -E reads it
// from the IPMI_PASSWORD environment variable. Pure.

export type IpmiAction = 'on' | 'off' | 'cycle' | 'status' | 'pxe';

export type Bmc = { address: string; username: string; port?: number };

export function ipmitoolArgs(bmc: Bmc, action: IpmiAction): string[] {
  const base = ['-I', 'lanplus', '-H', bmc.address, ...(bmc.port ? ['-p', String(bmc.port)] : []), '-U', bmc.username, '-E'];
  // -N/-R: seconds per try and retries, so an unreachable BMC fails in ~10 s, not a minute.
  const timing = ['-N', '2', '-R', '3'];
  switch (action) {
    case 'pxe':
      // The next boot only: after the install the machine boots from its disk again.
      return [...base, ...timing, 'chassis', 'bootdev', 'pxe'];
    default:
      return [...base, ...timing, 'chassis', 'power', action];
  }
}

/** `Chassis Power is on` → 'on'; anything else ipmitool prints for status → null. */
export function parsePowerStatus(stdout: string): 'on' | 'off' | null {
  const m = /Chassis Power is (on|off)/i.exec(stdout);
  return m ? (m[1]!.toLowerCase() as 'on' | 'off') : null;
}
