// What may stand in one word of an iPXE command line (a URL, a kernel argument): iPXE splits at
// whitespace, expands `${...}` and honours quotes and backslashes, so none of those may appear.
// `?` is allowed: it is plain in iPXE and URLs carry query strings. The config loader checks
// operator kernel arguments with the same rule the script renderer enforces.

const WORD = /^[A-Za-z0-9._:/=+,@%?-]+$/;

/** One word an iPXE script can carry as it is; a leading '-' would read as an option. */
export function isScriptWord(value: string): boolean {
  return WORD.test(value) && !value.startsWith('-');
}

export const SCRIPT_WORD_CHARS = 'letters, digits and ._:/=+,@%?-';

/**
 * One kernel argument of a Linux profile (cloud-init): a script word in which `;` may also stand,
 * for `ds=nocloud;s=<url>`. iPXE treats `;` as an operator only as a word of its own; U-Boot's
 * pxelinux append line never meets its shell; GRUB gets each argument single-quoted.
 */
export function isKernelWord(value: string): boolean {
  return /^[A-Za-z0-9._:/=+,@%?;-]+$/.test(value) && !value.startsWith('-') && value !== ';';
}

export const KERNEL_WORD_CHARS = 'letters, digits and ._:/=+,@%?;-';
