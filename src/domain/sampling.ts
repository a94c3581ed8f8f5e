/**
 * A uniform random sample of a stream whose length is known only at its end (reservoir sampling,
 * Algorithm R), drawn with a seeded generator so the same seed over the same stream picks the same
 * items. Memory holds the sample, never the stream.
 */

/** Numbers in [0, 1) from a seed (FNV-1a of the seed, then mulberry32): the same seed, the same sequence. */
export function seededRandom(seed: string): () => number {
  let state = 0x811c9dc5;
  for (let i = 0; i < seed.length; i += 1) state = Math.imul(state ^ seed.charCodeAt(i), 0x01000193);
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed)) ^ mixed;
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 2 ** 32;
  };
}

export interface Reservoir<T> {
  /** Offers the stream's next item; it may replace one already kept. */
  offer(item: T): void;
  /** Items offered so far. */
  readonly seen: number;
  /** The sample, in the order the stream offered its items. */
  items(): T[];
}

/** Keeps a uniform sample of at most `capacity` of the items offered. */
export function reservoir<T>(capacity: number, random: () => number): Reservoir<T> {
  const kept: { position: number; item: T }[] = [];
  let seen = 0;
  return {
    offer(item) {
      const position = seen;
      seen += 1;
      if (kept.length < capacity) {
        kept.push({ position, item });
        return;
      }
      // Each of the `seen` items so far stays in the sample with the same chance, capacity / seen.
      const slot = Math.floor(random() * seen);
      if (slot < capacity) kept[slot] = { position, item };
    },
    get seen() {
      return seen;
    },
    items() {
      return [...kept].sort((a, b) => a.position - b.position).map((entry) => entry.item);
    },
  };
}
