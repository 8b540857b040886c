// `usip completion bash|zsh|fish`: shell completion scripts generated from the commander
// definitions (commands, options, which take a value), so they cannot drift from the parser.
// Values are completed where they are a known set: commander's choices, and those the commands
// register in `values` (backends, column names, actions, fields; comma-separated lists item by
// item); paths where an option or argument names one.
import type { Argument, Command, Option } from 'commander';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** The values of an option's argument: a set of words, one word or a comma-separated list. */
export interface ValueSet {
  values: readonly string[];
  list?: boolean;
}

/** Per command name, per long option (or "<argument>"), the values to complete. */
export type ValueTable = Readonly<Record<string, Readonly<Record<string, ValueSet>>>>;

interface OptionSpec {
  short?: string;
  long?: string;
  description: string;
  takesValue: boolean;
  optionalValue: boolean;
  values?: ValueSet;
  path: boolean;
}

interface CommandSpec {
  name: string;
  description: string;
  options: OptionSpec[];
  /** What the positional arguments complete: a set of words, paths, or nothing. */
  argument?: { values?: ValueSet; path: boolean };
}

const PATHLIKE = /<(?:path|dir|file)[^>]*>|\[(?:path|dir|file)[^\]]*\]/i;

function optionSpec(option: Option, values: ValueSet | undefined): OptionSpec {
  const choices = option.argChoices === undefined ? undefined : { values: option.argChoices };
  return {
    short: option.short,
    long: option.long,
    description: option.description,
    takesValue: option.required || option.optional,
    optionalValue: option.optional,
    values: values ?? choices,
    path: PATHLIKE.test(option.flags),
  };
}

function helpOption(command: Command): OptionSpec {
  // commander adds -h/--help itself (df has --help alone: -h is df's --human-readable).
  const flags = command.options.some((o) => o.short === '-h') ? { long: '--help' } : { short: '-h', long: '--help' };
  return { ...flags, description: 'display help for command', takesValue: false, optionalValue: false, path: false };
}

/** The commands of `program`, with their options and what their values complete. */
export function describe(program: Command, table: ValueTable): CommandSpec[] {
  return program.commands
    .filter((c) => !(c as Command & { _hidden?: boolean })._hidden)
    .map((command) => {
      const own = table[command.name()] ?? {};
      const args: readonly Argument[] = command.registeredArguments;
      const first = args[0];
      const argValues = own['<argument>'] ?? (first?.argChoices === undefined ? undefined : { values: first.argChoices });
      return {
        name: command.name(),
        description: command.description(),
        options: [...command.options.filter((o) => !o.hidden).map((o) => optionSpec(o, own[o.long ?? ''])), helpOption(command)],
        argument: first === undefined ? undefined : { values: argValues, path: argValues === undefined && /file|path|device|dir/i.test(first.name()) },
      };
    });
}

/** The script for `shell`. */
export function completionScript(shell: Shell, program: Command, table: ValueTable): string {
  const commands = describe(program, table);
  const name = program.name();
  switch (shell) {
    case 'bash':
      return bashScript(name, commands);
    case 'zsh':
      return zshScript(name, commands);
    case 'fish':
      return fishScript(name, commands);
  }
}

/** A word in single quotes for sh, bash, zsh and fish alike (fish also reads \' inside). */
const sq = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;
const fishQuote = (text: string) => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const names = (o: OptionSpec) => [o.short, o.long].filter((n): n is string => n !== undefined);

function bashScript(program: string, commands: CommandSpec[]): string {
  const fn = `_${program.replace(/\W/g, '_')}_completion`;
  const lines: string[] = [];
  lines.push(`# bash completion for ${program}: generated from its command definitions by "${program} completion bash".`);
  lines.push(`# Load it with:  source <(${program} completion bash)`);
  lines.push(`${fn}() {`);
  // The word being completed, whole: bash splits words at = and : too (--poll=mount, MAJ:MIN).
  lines.push('\tlocal line=${COMP_LINE:0:COMP_POINT}');
  lines.push('\tlocal -a words');
  lines.push('\tread -ra words <<<"$line"');
  lines.push('\t[[ $line =~ [[:space:]]$ || ${#words[@]} -eq 0 ]] && words+=("")');
  lines.push('\tlocal cur=${words[-1]} prev=""');
  lines.push('\t(( ${#words[@]} > 1 )) && prev=${words[-2]}');
  lines.push('\tlocal cmd="" w');
  lines.push('\tfor w in "${words[@]:1:${#words[@]}-2}"; do');
  lines.push('\t\tcase $w in -*) ;; *) cmd=$w; break ;; esac');
  lines.push('\tdone');
  lines.push('\tlocal opt="" value="" list=""');
  lines.push('\tif [[ $cur == --*=* ]]; then opt=${cur%%=*}; value=${cur#*=}; else opt=$prev; value=$cur; fi');
  lines.push('\tlocal -a reply=()');
  lines.push('\tlocal words_of="" takes="" files=""');
  lines.push('\tcase $cmd in');
  lines.push(`\t"") words_of=${sq([...commands.map((c) => c.name), '-h', '--help', '-V', '--version'].join(' '))} ;;`);
  for (const command of commands) {
    lines.push(`\t${command.name})`);
    lines.push('\t\tcase $opt in');
    for (const option of command.options.filter((o) => o.takesValue)) {
      const pattern = names(option).join('|');
      if (option.values !== undefined) {
        lines.push(`\t\t${pattern}) takes=1; words_of=${sq(option.values.values.join(' '))}${option.values.list ? '; list=1' : ''} ;;`);
      } else {
        lines.push(`\t\t${pattern}) takes=1${option.path ? '; files=1' : ''} ;;`);
      }
    }
    lines.push('\t\tesac');
    const optionWords = command.options.flatMap((o) => names(o).map((n) => (o.takesValue && n.startsWith('--') && o.optionalValue ? `${n}=` : n)));
    const arg = command.argument;
    const argWords = arg?.values?.values.join(' ') ?? '';
    lines.push(`\t\tif [[ -z $takes ]]; then`);
    lines.push(`\t\t\tvalue=$cur`);
    lines.push(`\t\t\tif [[ $cur == -* ]]; then words_of=${sq(optionWords.join(' '))}; else words_of=${sq(argWords)}${arg?.path ? '; files=1' : ''}; fi`);
    lines.push('\t\tfi ;;');
  }
  lines.push('\tesac');
  lines.push('\tlocal head=""');
  lines.push('\t# A comma-separated list completes its last item.');
  lines.push('\tif [[ -n $list && $value == *,* ]]; then head=${value%,*},; value=${value##*,}; fi');
  lines.push('\t[[ -n $list && $value == +* ]] && { head+="+"; value=${value#+}; }');
  lines.push('\tlocal word');
  lines.push('\tif [[ -n $words_of ]]; then');
  lines.push('\t\tfor word in $words_of; do');
  lines.push('\t\t\t[[ ${word,,} == "${value,,}"* ]] && reply+=("$head$word")');
  lines.push('\t\tdone');
  lines.push('\tfi');
  lines.push('\tif [[ -n $files ]]; then');
  lines.push('\t\twhile IFS= read -r word; do reply+=("$word"); done < <(compgen -f -- "$value")');
  lines.push('\tfi');
  lines.push('\t# bash replaces only what follows the last = or : of the word: drop what comes before.');
  lines.push('\tlocal keep=${cur%"${cur##*[=:]}"}');
  lines.push('\tCOMPREPLY=()');
  lines.push('\tfor word in "${reply[@]}"; do');
  lines.push('\t\t[[ $cur == --*=* ]] && word=${opt}=$word');
  lines.push('\t\tCOMPREPLY+=("${word#"$keep"}")');
  lines.push('\tdone');
  lines.push('\t# No space after an option that takes "=value", nor after a list item (more may follow).');
  lines.push('\t[[ ${#COMPREPLY[@]} -eq 1 && ( ${COMPREPLY[0]} == *= || -n $list ) ]] && compopt -o nospace 2>/dev/null');
  lines.push('\treturn 0');
  lines.push('}');
  lines.push(`complete -F ${fn} ${program}`);
  return `${lines.join('\n')}\n`;
}

/** A description inside a zsh _arguments spec ([...]) or _describe entry: no brackets or colons raw. */
const zshText = (text: string) => text.replace(/\\/g, '\\\\').replace(/([[\]:])/g, '\\$1').replace(/'/g, `'\\''`);

function zshScript(program: string, commands: CommandSpec[]): string {
  const fn = `_${program.replace(/\W/g, '_')}`;
  const lines: string[] = [];
  lines.push(`#compdef ${program}`);
  lines.push(`# zsh completion for ${program}: generated from its command definitions by "${program} completion zsh".`);
  lines.push(`# Load it with:  source <(${program} completion zsh)   or save it as _${program} in a directory of $fpath.`);
  lines.push(`${fn}() {`);
  lines.push('\tlocal -a commands');
  lines.push('\tcommands=(');
  for (const c of commands) lines.push(`\t\t'${c.name}:${zshText(c.description)}'`);
  lines.push('\t)');
  lines.push('\tif (( CURRENT == 2 )); then');
  lines.push("\t\t_describe -t commands 'command' commands");
  lines.push('\t\treturn');
  lines.push('\tfi');
  lines.push('\tlocal cmd=$words[2]');
  lines.push('\tshift words');
  lines.push('\t(( CURRENT-- ))');
  lines.push('\tcase $cmd in');
  for (const c of commands) {
    lines.push(`\t${c.name})`);
    const specs = c.options.map((o) => {
      const all = names(o);
      const exclusive = all.length > 1 ? `'(${all.join(' ')})'{${all.join(',')}}` : `'${all[0]}`;
      const open = all.length > 1 ? "'" : '';
      let value = '';
      if (o.takesValue) {
        const what = o.long?.replace(/^--/, '') ?? 'value';
        const action =
          o.values === undefined
            ? o.path
              ? '_files'
              : ' '
            : o.values.list
              ? `_values -s , ${what} ${o.values.values.map((v) => v.replace(/:/g, '\\:')).join(' ')}`
              : `(${o.values.values.join(' ')})`;
        value = `${o.optionalValue ? '=-' : '='}:${what}:${action}`;
      }
      return `\t\t\t${exclusive}${open}[${zshText(o.description)}]${value}'`;
    });
    const arg = c.argument;
    if (arg !== undefined) {
      const action = arg.values !== undefined ? `(${arg.values.values.join(' ')})` : arg.path ? '_files' : ' ';
      specs.push(`\t\t\t'*:argument:${action}'`);
    }
    lines.push(`\t\t_arguments -s \\`);
    lines.push(`${specs.join(' \\\n')}`);
    lines.push('\t\t;;');
  }
  lines.push('\tesac');
  lines.push('}');
  lines.push('if [[ $zsh_eval_context[-1] == loadautofunc ]]; then');
  lines.push(`\t${fn} "$@"`);
  lines.push('else');
  lines.push(`\tcompdef ${fn} ${program}`);
  lines.push('fi');
  return `${lines.join('\n')}\n`;
}

function fishScript(program: string, commands: CommandSpec[]): string {
  const lines: string[] = [];
  lines.push(`# fish completion for ${program}: generated from its command definitions by "${program} completion fish".`);
  lines.push(`# Load it with:  ${program} completion fish | source   or save it as ~/.config/fish/completions/${program}.fish`);
  lines.push(`complete -c ${program} -f`);
  const all = commands.map((c) => c.name).join(' ');
  for (const c of commands) {
    lines.push(`complete -c ${program} -n ${fishQuote(`not __fish_seen_subcommand_from ${all}`)} -a ${c.name} -d ${fishQuote(c.description)}`);
  }
  for (const c of commands) {
    const when = `-n ${fishQuote(`__fish_seen_subcommand_from ${c.name}`)}`;
    for (const o of c.options) {
      const parts = [`complete -c ${program}`, when];
      if (o.short !== undefined) parts.push(`-s ${o.short.slice(1)}`);
      if (o.long !== undefined) parts.push(`-l ${o.long.slice(2)}`);
      if (o.takesValue) {
        if (o.values !== undefined) {
          // A list completes item by item (fish's own helper splits at the commas).
          parts.push(o.values.list ? `-x -a ${fishQuote(`(__fish_complete_list , "printf '%s\\n' ${o.values.values.join(' ')}")`)}` : `-x -a ${fishQuote(o.values.values.join(' '))}`);
        } else {
          parts.push(o.path ? '-r -F' : '-x');
        }
      }
      parts.push(`-d ${fishQuote(o.description)}`);
      lines.push(parts.join(' '));
    }
    const arg = c.argument;
    if (arg?.values !== undefined) lines.push(`complete -c ${program} ${when} -a ${fishQuote(arg.values.values.join(' '))}`);
    else if (arg?.path) lines.push(`complete -c ${program} ${when} -F`);
  }
  return `${lines.join('\n')}\n`;
}
