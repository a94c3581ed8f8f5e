/**
 * Reads a records file as a stream, one record at a time, whatever its size: the original JSON
 * array (parsed incrementally by stream-json) or JSON Lines (one object per line). The format is
 * told by the first character that is not whitespace or a byte-order mark.
 */
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
// The package maps 'stream-json/*' to its src/ through `exports`; tsconfig's paths mirror that for tsc.
import parser from 'stream-json/parser.js';
import streamArray from 'stream-json/streamers/stream-array.js';

export type RecordEntry =
  /** `index` counts records from 0, in file order. */
  | { index: number; value: unknown }
  /** Text that is no record; `fatal` when nothing after it can be read. */
  | { index: number; malformed: string; fatal: boolean };

const BYTE_ORDER_MARK = '\uFEFF';

/** The stream's text with the leading BOM and whitespace removed, and its first character. */
async function peek(body: Readable): Promise<{ first: string | undefined; text: Readable }> {
  body.setEncoding('utf8');
  const chunks = body[Symbol.asyncIterator]() as AsyncIterator<string>;
  let head = '';
  for (;;) {
    const next = await chunks.next();
    if (next.done) break;
    head += next.value;
    head = head.replace(new RegExp(`^[${BYTE_ORDER_MARK}\\s]+`), '');
    if (head.length > 0) break;
  }
  async function* rest(): AsyncGenerator<string> {
    try {
      if (head) yield head;
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
    } finally {
      await chunks.return?.();
    }
  }
  return { first: head[0], text: Readable.from(rest()) };
}

/**
 * Parser and array streamer run as two streams, not one pipeline: when the text breaks off, the
 * parser fails, but the records whose tokens it had already emitted still come out of the
 * streamer before the fatal entry.
 */
async function* fromArray(text: Readable): AsyncGenerator<RecordEntry> {
  const tokens = parser.asStream();
  const items = streamArray.asStream();
  let failure: Error | undefined;
  // A failure to read the body (a reset connection) is no verdict on the file: it is rethrown, retryable.
  let readFailure: Error | undefined;
  text.on('error', (error) => {
    readFailure = error;
    items.end();
  });
  tokens.on('error', (error) => {
    failure = error;
    text.destroy();
    items.end();
  });
  text.pipe(tokens).pipe(items);
  let index = 0;
  for await (const item of items as AsyncIterable<{ key: number; value: unknown }>) {
    index = item.key + 1;
    yield { index: item.key, value: item.value };
  }
  if (readFailure) throw readFailure;
  if (failure) {
    yield { index, malformed: `the records file is not valid JSON after record ${index}: ${failure.message}`, fatal: true };
  }
}

async function* fromLines(text: Readable): AsyncGenerator<RecordEntry> {
  let index = 0;
  let lineNumber = 0;
  for await (const line of createInterface({ input: text, crlfDelay: Infinity })) {
    lineNumber += 1;
    if (line.trim() === '') continue;
    try {
      yield { index, value: JSON.parse(line) as unknown };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      yield { index, malformed: `line ${lineNumber} is not valid JSON: ${reason}`, fatal: false };
    }
    index += 1;
  }
}

export async function* readRecords(body: Readable): AsyncGenerator<RecordEntry> {
  try {
    const { first, text } = await peek(body);
    if (first === undefined) return;
    if (first === '[') yield* fromArray(text);
    else if (first === '{') yield* fromLines(text);
    else {
      text.destroy();
      yield {
        index: 0,
        malformed: `the records file must be a JSON array of records or JSON Lines, one record object a line; it starts with '${first}'`,
        fatal: true,
      };
    }
  } finally {
    // However reading ends (done, a break, a throw), the S3 connection goes back.
    body.destroy();
  }
}
