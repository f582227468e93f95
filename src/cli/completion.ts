// `genesis completion bash|zsh`: shell completion generated from the commands' own help texts
// (their "Commands:" blocks and the options they list), so a new command or flag completes as soon
// as its help mentions it. zsh runs the same function through bashcompinit.

import { BOOT_STATES, ROLES } from '../domain/node.ts';
import { commandsOf } from './args.ts';

/** A top-level command: its subcommands (first words) and the options its help lists. */
export type CommandEntry = { subcommands: string[]; options: string[] };

/** The command table, read from each command's usage text. */
export function commandTable(usages: Record<string, string>): Record<string, CommandEntry> {
  const table: Record<string, CommandEntry> = {};
  for (const [name, usage] of Object.entries(usages)) {
    let subcommands = commandsOf(usage);
    // A command with one verb says it in its usage line: "genesis config render …", "genesis token show …".
    if (!subcommands.length) {
      const verbs = new RegExp(`^Usage: genesis ${name} ([a-z][a-z|-]*)`, 'm').exec(usage)?.[1];
      if (verbs) subcommands = verbs.split('|');
    }
    // Options from the usage line and the Commands and Options blocks; prose may name other tools' flags.
    const listed = usage
      .split(/\n\n/)
      .filter((p) => /^(Usage|Commands|Options):/.test(p))
      .join('\n');
    const options = [...new Set([...listed.matchAll(/(?<![\w-])(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!).concat('--help'))].sort();
    table[name] = { subcommands, options };
  }
  return table;
}

const quote = (words: string[]) => words.join(' ').replace(/[^a-z0-9 :_-]/gi, '');

export function bashCompletion(table: Record<string, CommandEntry>): string {
  const commands = Object.keys(table).sort();
  const words = [...commands, 'help'];
  const cases = commands
    .map((c) => `    ${c}) subs="${quote(table[c]!.subcommands)}"; opts="${quote(table[c]!.options)}" ;;`)
    .join('\n');
  return `# genesis shell completion (bash). Load it with:  source <(genesis completion bash)
# or install it:  genesis completion bash > /etc/bash_completion.d/genesis
_genesis() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" cmd="\${COMP_WORDS[1]}"
  local subs="" opts="" cands=""
  COMPREPLY=()
  if [ "$COMP_CWORD" -eq 1 ]; then
    cands="${quote(words)}"
  else
    case "$cmd" in
${cases}
      help) subs="${quote(commands.filter((c) => c !== 'help'))}" ;;
      *) return 0 ;;
    esac
    case "$prev" in
      -o|--output) case "$cmd" in talosconfig|kubeconfig) return 0 ;; *) cands="table json yaml" ;; esac ;;
      --config|--patch|--from|--bmc-password-file) return 0 ;;
      --role) cands="${quote([...ROLES])}" ;;
      --state) cands="${quote([...BOOT_STATES])}" ;;
      --arch) cands="amd64 arm64 amd64,arm64" ;;
    esac
    if [ -z "$cands" ]; then
      if [[ "$cur" == -* ]]; then cands="$opts"
      elif [ "$COMP_CWORD" -eq 2 ]; then cands="$subs"
      elif [ "$cmd" = nodes ] && [ "\${COMP_WORDS[2]}" = assign ] && [ "$COMP_CWORD" -eq 4 ]; then cands="controlplane worker"
      else return 0
      fi
    fi
  fi
  COMPREPLY=( $(compgen -W "$cands" -- "$cur") )
}
complete -o default -F _genesis genesis
`;
}

export function zshCompletion(table: Record<string, CommandEntry>): string {
  return `#compdef genesis
# genesis shell completion (zsh). Load it with:  source <(genesis completion zsh)
(( $+functions[compdef] )) || { autoload -U +X compinit && compinit -u; }
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(table).split('\n').filter((l) => !l.startsWith('#')).join('\n')}`;
}
