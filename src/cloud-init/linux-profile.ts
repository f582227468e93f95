// What a boot profile besides Talos is, once loaded (profile.ts reads one; documents.ts renders
// its documents). On its own so that both can name it without importing each other.

export const RECIPES = ['k3s'] as const;
export type Recipe = (typeof RECIPES)[number];

export type LinuxProfile = {
  name: string;
  kernel: string;
  initrd: string;
  /** Kernel arguments, each a template for one word (documents.ts, renderCmdline). */
  cmdline: string[];
  userData: string;
  networkConfig: string | null;
  vendorData: string | null;
  recipe: Recipe | null;
  sshAuthorizedKeys: string[];
  /** The profile's own variables, `{{ vars.<name> }}` in its templates. */
  vars: Record<string, string>;
  /** Where it was defined: `built-in` or its directory. */
  source: string;
};
