// Column layout for findmnt-, df- and lsblk-like tables: cli-table3 lays the cells out (display
// width of wide and combining characters via string-width, per-column alignment); this file
// only sets it up the way util-linux prints (no borders, one space between columns, the last
// column not padded) and cuts columns down to the terminal's width.
import Table from 'cli-table3';
import stringWidth from 'string-width';

export type Align = 'left' | 'right';

export interface TableColumn {
  align?: Align;
  /** May be cut to fit the terminal (findmnt's SCOLS_FL_TRUNC columns: options, types)... */
  truncate?: boolean;
  /** ...but not below this width (the header's). */
  minWidth?: number;
  /** The column is at least this wide, whatever its cells (df's minimum widths). */
  atLeast?: number;
}

const NO_BORDERS = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: ' ',
};

/** Display width of a cell (East Asian wide characters count 2, combining marks 0). */
export const displayWidth = (text: string): number => stringWidth(text);

/** The longest prefix of `text` at most `width` columns wide. */
export function cutToWidth(text: string, width: number): string {
  let out = '';
  let used = 0;
  for (const char of text) {
    const w = stringWidth(char);
    if (used + w > width) break;
    out += char;
    used += w;
  }
  return out;
}

/**
 * Lays out rows (the first is the header, if any) as util-linux's tables print: columns one space
 * apart, aligned, the last one not padded. With `width` (the terminal's), columns marked
 * `truncate` are cut, the rightmost first, down to their `minWidth`, until the lines fit.
 */
export function layout(rows: readonly (readonly string[])[], columns: readonly TableColumn[], width?: number): string {
  if (rows.length === 0) return '';
  let cells = rows.map((row) => [...row]);
  if (width !== undefined && width > 0) cells = fitToWidth(cells, columns, width);
  const widest = columns.map((c, i) => Math.max(c.atLeast ?? 0, ...cells.map((row) => displayWidth(row[i]!))));
  const table = new Table({
    chars: NO_BORDERS,
    colWidths: widest,
    style: { 'padding-left': 0, 'padding-right': 0, head: [], border: [], compact: true },
    colAligns: columns.map((c) => c.align ?? 'left'),
    wordWrap: false,
  });
  table.push(...cells.map((row) => row.map((content) => ({ content }))));
  const lines = table.toString().split('\n');
  // cli-table3 pads every column; util-linux leaves the last one as it is.
  const last = columns.length - 1;
  const lastWidth = widest[last]!;
  return `${lines
    .map((line, i) => {
      const cell = cells[i]![last]!;
      const pad = lastWidth - displayWidth(cell);
      return columns[last]!.align === 'right' || pad === 0 ? line : line.slice(0, line.length - pad);
    })
    .join('\n')}\n`;
}

function fitToWidth(cells: string[][], columns: readonly TableColumn[], width: number): string[][] {
  const widths = columns.map((_, i) => Math.max(...cells.map((row) => displayWidth(row[i]!))));
  let total = widths.reduce((a, b) => a + b, 0) + widths.length - 1;
  for (let i = columns.length - 1; i >= 0 && total > width; i--) {
    if (!columns[i]!.truncate) continue;
    const floor = columns[i]!.minWidth ?? 0;
    const target = Math.max(floor, widths[i]! - (total - width));
    total -= widths[i]! - target;
    widths[i] = target;
  }
  return cells.map((row) => row.map((cell, i) => (displayWidth(cell) > widths[i]! ? cutToWidth(cell, widths[i]!) : cell)));
}

/** The width to fit tables to: the terminal's when stdout is one (COLUMNS first, as util-linux). */
export function terminalWidth(stream: NodeJS.WriteStream = process.stdout): number | undefined {
  if (!stream.isTTY) return undefined;
  const env = Number(process.env.COLUMNS);
  if (Number.isSafeInteger(env) && env > 0) return env;
  return stream.columns > 0 ? stream.columns : undefined;
}
