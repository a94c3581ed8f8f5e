/**
 * Temporal refuses a payload over 2 MB. Lists an activity takes are cut into slices of at most this
 * many characters of JSON: at three bytes a character at worst, still under the limit.
 */
export const SLICE_CHARS = 256 * 1024;

/** `items` in order, cut into slices whose JSON stays under `maxChars`; an item larger than that alone is a slice of its own. */
export function slicesByJsonSize<T>(items: T[], maxChars = SLICE_CHARS): T[][] {
  const slices: T[][] = [];
  let slice: T[] = [];
  let chars = 0;
  for (const item of items) {
    const size = JSON.stringify(item).length + 1;
    if (slice.length > 0 && chars + size > maxChars) {
      slices.push(slice);
      slice = [];
      chars = 0;
    }
    slice.push(item);
    chars += size;
  }
  if (slice.length > 0) slices.push(slice);
  return slices;
}
