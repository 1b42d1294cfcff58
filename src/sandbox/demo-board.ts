// The demo's live board: one line per rollout, redrawn in place on a terminal, changes only
// when piped. On a terminal every line is cut to the terminal's width: a line that wrapped
// would take two rows, and moving the cursor up by the number of lines written would then
// leave copies and fragments of earlier boards behind.

import type { RolloutState } from '../rollout/types.js';

/** What the board writes to: process.stdout, or a stand-in in tests. */
export interface BoardOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  /** The terminal's width; undefined when piped. */
  readonly columns?: number;
  on?(event: 'resize', listener: () => void): unknown;
  off?(event: 'resize', listener: () => void): unknown;
}

const ERASE_LINE = '\x1b[2K';
const ERASE_BELOW = '\x1b[J';
const CLEAR_SCREEN = '\x1b[H\x1b[2J';
const up = (rows: number) => `\x1b[${rows}A`;

/** Assumed when a terminal does not say how wide it is. */
const DEFAULT_COLUMNS = 80;

export function weightBar(weight: number, width = 20): string {
  const filled = Math.round((weight / 100) * width);
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${String(weight).padStart(3)}%`;
}

/**
 * Cuts `text` so it fits in `columns` terminal cells with the last cell left free (writing
 * into the last cell makes some terminals wrap early). Counted in code points: the board
 * writes only single-cell characters.
 */
export function fitToWidth(text: string, columns: number): string {
  const room = Math.max(1, columns - 1);
  const chars = [...text];
  if (chars.length <= room) return text;
  return `${chars
    .slice(0, room - 1)
    .join('')
    .trimEnd()}…`;
}

/** One rollout's board line, before fitting; the bar is shorter on narrow terminals. */
export function boardLine(state: RolloutState, columns = Number.POSITIVE_INFINITY): string {
  const last = state.checks[state.checks.length - 1];
  const verdict = last ? last.verdict : '-';
  const why = state.reason ? `  ${state.reason}` : last && last.verdict !== 'pass' ? `  ${last.reason}` : '';
  const bar = weightBar(state.weight, columns < 100 ? 10 : 20);
  return `${state.key.padEnd(16)} ${bar}  ${state.phase.padEnd(11)} ${verdict.padEnd(12)}${why}`.trimEnd();
}

export class ProgressBoard {
  private readonly out: BoardOutput;
  private readonly tty: boolean;
  /** Rows of the board on screen now, counted from the row the cursor is on upwards. */
  private drawnRows = 0;
  /** The last board drawn, drawn again below a note and after a resize. */
  private board: { states: RolloutState[]; seconds: number } | undefined;
  /** Everything printed above the board, written again after a resize clears the screen. */
  private readonly printed: string[] = [];
  private readonly lastLines = new Map<string, string>();
  private readonly onResize = () => this.redrawScreen();

  constructor(options: { out: BoardOutput }) {
    this.out = options.out;
    this.tty = Boolean(options.out.isTTY);
    if (this.tty) this.out.on?.('resize', this.onResize);
  }

  /** Text above the board (lines ending in \n); not cut, so addresses stay whole to copy. */
  print(text: string): void {
    if (!this.tty) {
      this.out.write(text);
      return;
    }
    this.printed.push(text);
    this.out.write(`${this.toBoardTop()}${ERASE_BELOW}${text}${this.boardText()}`);
  }

  /** A line that stays above the board, e.g. an HTTP call the demo made. */
  note(text: string): void {
    this.print(`  ${text}\n`);
  }

  draw(states: RolloutState[], seconds: number): void {
    if (this.tty) {
      this.board = { states, seconds };
      // One write: the old board is overwritten line by line, never blanked first.
      this.out.write(`${this.toBoardTop()}${this.boardText()}${ERASE_BELOW}`);
      return;
    }
    for (const state of states) {
      const text = boardLine(state);
      const compact = text.replace(/\s+(pass|fail|inconclusive|-)\s.*$/, '');
      if (this.lastLines.get(state.key) !== compact) {
        this.out.write(`${seconds.toFixed(1).padStart(6)}s  ${text}\n`);
        this.lastLines.set(state.key, compact);
      }
    }
  }

  /** Stops following the terminal's size; the board stays on screen as last drawn. */
  close(): void {
    this.out.off?.('resize', this.onResize);
  }

  private get columns(): number {
    return this.out.columns && this.out.columns > 0 ? this.out.columns : DEFAULT_COLUMNS;
  }

  /** Moves the cursor to the board's first row (a no-op before the first draw). */
  private toBoardTop(): string {
    const rows = this.drawnRows;
    this.drawnRows = 0;
    return rows > 0 ? `${up(rows)}\r` : '';
  }

  /** The board, every line cut to the width; counts the rows it takes. */
  private boardText(): string {
    if (!this.board) return '';
    const columns = this.columns;
    const { states, seconds } = this.board;
    const lines = [...states.map((s) => boardLine(s, columns)), `  ${seconds.toFixed(0)}s elapsed`];
    this.drawnRows = lines.length;
    return lines.map((text) => `${ERASE_LINE}${fitToWidth(text, columns)}\n`).join('');
  }

  /**
   * After a resize the terminal may have re-wrapped what is on screen, so the board's rows can
   * no longer be counted: clear the screen and write everything again at the new width.
   */
  private redrawScreen(): void {
    this.drawnRows = 0;
    this.out.write(`${CLEAR_SCREEN}${this.printed.join('')}${this.boardText()}`);
  }
}
