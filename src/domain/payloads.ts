/**
 * Temporal refuses a payload over 2 MB. Lists an activity takes are cut into slices of at most this
 * many characters of JSON: at three bytes a character at worst, still under the limit.
 */
export const SLICE_CHARS = 256 * 1024;

/**
 * `items` in order, cut into groups of at most `maxCount` whose sizes add up to at most `maxSize`;
 * an item larger than that alone is a group of its own.
 */
export function groupWithin<T>(
  items: readonly T[],
  sizeOf: (item: T) => number,
  maxSize: number,
  maxCount = Number.POSITIVE_INFINITY,
): T[][] {
  const groups: T[][] = [];
  let group: T[] = [];
  let total = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (group.length > 0 && (group.length >= maxCount || total + size > maxSize)) {
      groups.push(group);
      group = [];
      total = 0;
    }
    group.push(item);
    total += size;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/** `items` in order, cut into slices whose JSON stays under `maxChars`. */
export function slicesByJsonSize<T>(items: readonly T[], maxChars = SLICE_CHARS): T[][] {
  return groupWithin(items, (item) => JSON.stringify(item).length + 1, maxChars);
}
