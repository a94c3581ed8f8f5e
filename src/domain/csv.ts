/**
 * CSV the tool writes for spreadsheets. A cell that starts with `=`, `+`, `-`, `@`, a tab or a
 * carriage return is a formula to a spreadsheet, and keys, ids and reasons come from records files
 * and queues: such a cell is written with a leading `'` (negative numbers stay numbers).
 */
import { stringify } from 'csv-stringify/sync';

export function csvText(rows: unknown[][]): string {
  return stringify(rows, { escape_formulas: true });
}

/** One row, without its line end. */
export function csvLine(values: unknown[]): string {
  return csvText([values]).replace(/\r?\n$/, '');
}
