/** Numbers as the CLI and the report page show them to a person. */

/** A whole number with thousands separators: 12,345. */
export function count(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

export interface PercentStyle {
  /** Shown when `whole` is 0 and there is no share to tell. */
  none?: string;
  /** `100%` rather than `100.0%` when `part` is all of `whole`. */
  roundWhole?: boolean;
}

/** `part` as a share of `whole` with one decimal: 42.5%. */
export function percent(part: number, whole: number, { none = '0.0%', roundWhole = false }: PercentStyle = {}): string {
  if (whole > 0) return `${((100 * part) / whole).toFixed(roundWhole && part === whole ? 0 : 1)}%`;
  return none;
}
