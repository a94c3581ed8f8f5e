/**
 * Reads a records file as a stream, one record at a time, whatever its size: the original JSON
 * array or JSON Lines (one object per line). Only the record being read is held, and no more than
 * MAX_RECORD_BYTES of it: a longer record is skipped to its end and reported with its size, so a
 * file of any size, holding records of any size, reads in bounded memory.
 *
 * A broken record is reported and the reading goes on wherever the file says where the next record
 * starts: at the next line of JSON Lines, and after a record of a JSON array whose brackets and
 * quotes still pair up. Where the array itself breaks (a missing comma, a file cut short), nothing
 * after can be told apart, and the entry saying so is the last.
 *
 * The head of the file is looked at first for what makes the whole file no records file (empty,
 * UTF-16, compressed, not JSON, records spread over lines); `reindex start` refuses such a file
 * with the same words before a run starts.
 */
import type { Readable } from 'node:stream';
import { count } from '../domain/format';
import { MAX_RECORD_BYTES, MAX_RECORD_NESTING, nestsTooDeep } from '../domain/records';

/**
 * Where reading can resume: just after a record, at byte `byte` of the file, with the next
 * record's index and the line it is on. A retried split reads from there, not from byte 0.
 */
export interface ReadCursor {
  format: 'lines' | 'array';
  byte: number;
  index: number;
  line: number;
}

export type RecordEntry =
  /** `index` counts records from 0, in file order; `after` is where the next record starts. */
  | { index: number; value: unknown; after: ReadCursor }
  /**
   * Text that is no record; `fatal` when nothing after it can be read (and then no `after`).
   * `fileProblem`, when the file as a whole is no records file, is what is wrong with it (the only
   * entry then).
   */
  | { index: number; malformed: string; fatal: boolean; fileProblem?: string; after?: ReadCursor };

/** Bytes of the file's head looked at for whole-file problems: enough for a first record of any allowed size. */
export const HEAD_BYTES = 2 * MAX_RECORD_BYTES;

const BYTE_ORDER_MARK = [0xef, 0xbb, 0xbf];
const GZIP_MAGIC = [0x1f, 0x8b];
const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
const UTF16_MARKS = [
  [0xff, 0xfe],
  [0xfe, 0xff],
];

const NEWLINE = 0x0a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const isWhitespace = (byte: number | undefined) => byte === 0x20 || byte === 0x09 || byte === NEWLINE || byte === 0x0d;

const startsWith = (bytes: Buffer, signature: number[]) => signature.every((byte, i) => bytes[i] === byte);

const TOO_DEEP = `nests its brackets more than ${MAX_RECORD_NESTING} levels deep`;

/** Fatal: a UTF-8 decoding error is a finding, not a U+FFFD quietly in a key. A leading BOM is dropped. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Where the text starts: after a UTF-8 byte-order mark and whitespace. */
function textStart(head: Buffer): number {
  let at = startsWith(head, BYTE_ORDER_MARK) ? BYTE_ORDER_MARK.length : 0;
  while (isWhitespace(head[at])) at += 1;
  return at;
}

/** The text of `bytes` from `start` up to the next newline, or undefined when the line goes on past them. */
function lineAt(bytes: Buffer, start: number, wholeFile: boolean): string | undefined {
  const end = bytes.indexOf(NEWLINE, start);
  if (end < 0 && !wholeFile) return undefined;
  return bytes.toString('utf8', start, end < 0 ? bytes.length : end).trim();
}

const parsesAsJson = (text: string): { value: unknown } | undefined => {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
};

const isBlank = (bytes: Buffer, from: number) => {
  for (let at = from; at < bytes.length; at += 1) if (!isWhitespace(bytes[at])) return false;
  return true;
};

/** One JSON object holding the records in a member ({"Records": [...]}): the member's name. */
function wrappingMember(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  if (['Bucket', 'Key', 'Faces'].some((name) => name in value)) return undefined;
  return Object.entries(value).find(
    ([, member]) => Array.isArray(member) && member.some((item) => typeof item === 'object' && item !== null),
  )?.[0];
}

/**
 * What makes the whole file no records file, told from its head (the whole file when `wholeFile`),
 * worded to follow "the records file <name>"; undefined when the head looks like records.
 */
export function recordsFileProblem(head: Buffer, wholeFile: boolean): string | undefined {
  // UTF-16 without a mark still shows itself: every other byte of ASCII text is zero.
  if (UTF16_MARKS.some((mark) => startsWith(head, mark)) || (head.length >= 2 && (head[0] === 0 || head[1] === 0))) {
    return 'is UTF-16 text: save it as UTF-8 (with or without a byte-order mark)';
  }
  if (startsWith(head, GZIP_MAGIC)) return 'is gzip-compressed: decompress it first';
  if (startsWith(head, ZIP_MAGIC)) return 'is a ZIP archive (an Excel workbook?), not text: save the records as JSON';
  const start = textStart(head);
  if (start >= head.length) return wholeFile ? 'is empty: it holds no records' : undefined;
  const first = head[start];
  if (first === OPEN_BRACKET) {
    const next = textStart(head.subarray(start + 1)) + start + 1;
    if (head[next] === CLOSE_BRACKET && wholeFile && isBlank(head, next + 1))
      return 'is an empty JSON array: it holds no records';
    return undefined;
  }
  if (first === OPEN_BRACE) {
    const line = lineAt(head, start, wholeFile);
    if (line === '{') {
      return 'is not JSON Lines: its first line is "{" alone, so its records (or one JSON object) spread over several lines; give one record object a line (jq -c writes them so), or a JSON array of records';
    }
    const end = head.indexOf(NEWLINE, start);
    const member =
      line === undefined || !wholeFile || (end >= 0 && !isBlank(head, end))
        ? undefined
        : wrappingMember(parsesAsJson(line)?.value);
    if (member !== undefined)
      return `is one JSON object, not records: its member ${JSON.stringify(member)} holds an array; give that array as the records file, or one record a line`;
    return undefined;
  }
  return `must be a JSON array of records or JSON Lines, one record object a line; it starts with '${head.toString('utf8', start, start + 1)}'`;
}

/** A file that starts with an array on its first line and goes on with more lines is JSON Lines. */
function isJsonLines(head: Buffer): boolean {
  const start = textStart(head);
  if (head[start] === OPEN_BRACE) return true;
  const end = head.indexOf(NEWLINE, start);
  if (end < 0 || isBlank(head, end)) return false;
  return parsesAsJson(head.toString('utf8', start, end)) !== undefined;
}

/** Turns chunks of the file into entries; `end` says what the file's end means. */
interface Splitter {
  push(chunk: Buffer): RecordEntry[];
  end(): RecordEntry[];
}

/** A record's bytes, kept only while they fit in MAX_RECORD_BYTES; its size is counted either way. */
class RecordText {
  private parts: Buffer[] = [];
  bytes = 0;

  add(part: Buffer): void {
    this.bytes += part.length;
    if (this.bytes <= MAX_RECORD_BYTES) this.parts.push(part);
    else this.parts = [];
  }

  get tooLarge(): boolean {
    return this.bytes > MAX_RECORD_BYTES;
  }

  /** The text, or why there is none: too large, or not UTF-8. */
  take(): { text: string } | { problem: string } {
    const parts = this.parts;
    this.parts = [];
    if (this.tooLarge)
      return {
        problem: `is too large for a record: ${count(this.bytes)} bytes, over the limit of ${count(MAX_RECORD_BYTES)}`,
      };
    try {
      return { text: utf8.decode(Buffer.concat(parts)) };
    } catch {
      return { problem: 'is not UTF-8 text (saved as Windows-1252 or Latin-1?): save the records file as UTF-8' };
    }
  }
}

/** `from`: where a resumed reading starts; a fresh one starts at byte 0, record 0, line 1. */
function lineSplitter(from: Omit<ReadCursor, 'format'> = { byte: 0, index: 0, line: 1 }): Splitter {
  let index = from.index;
  /** Lines ended so far, counting from the file's start. */
  let line = from.line - 1;
  /** Bytes of the file before the chunk being pushed. */
  let offset = from.byte;
  let text = new RecordText();

  const endOfLine = (byte: number): RecordEntry | undefined => {
    line += 1;
    const taken = text.take();
    text = new RecordText();
    const source = 'text' in taken ? taken.text.replace(/\r$/, '') : undefined;
    if (source !== undefined && source.trim() === '') return undefined;
    const entryIndex = index;
    index += 1;
    const after: ReadCursor = { format: 'lines', byte, index, line: line + 1 };
    if ('problem' in taken)
      return { index: entryIndex, malformed: `line ${line} ${taken.problem}`, fatal: false, after };
    if (nestsTooDeep(source ?? ''))
      return { index: entryIndex, malformed: `line ${line} ${TOO_DEEP}`, fatal: false, after };
    try {
      return { index: entryIndex, value: JSON.parse(source ?? '') as unknown, after };
    } catch (error) {
      return {
        index: entryIndex,
        malformed: `line ${line} is not valid JSON: ${(error as Error).message}`,
        fatal: false,
        after,
      };
    }
  };

  return {
    push(chunk) {
      const entries: RecordEntry[] = [];
      let start = 0;
      for (let newline = chunk.indexOf(NEWLINE); newline >= 0; newline = chunk.indexOf(NEWLINE, start)) {
        text.add(chunk.subarray(start, newline));
        const entry = endOfLine(offset + newline + 1);
        if (entry) entries.push(entry);
        start = newline + 1;
      }
      if (start < chunk.length) text.add(chunk.subarray(start));
      offset += chunk.length;
      return entries;
    },
    end() {
      if (text.bytes === 0) return [];
      const entry = endOfLine(offset);
      return entry ? [entry] : [];
    },
  };
}

type ArrayState = 'opening' | 'firstRecord' | 'nextRecord' | 'record' | 'afterRecord' | 'closed' | 'broken';

/**
 * Splits a JSON array into its records by following brackets and strings only; each record's own
 * text is then parsed whole. Strings are skipped with indexOf, so a huge string costs little.
 */
function arraySplitter(from?: Omit<ReadCursor, 'format'>): Splitter {
  // A resumed reading starts just after a record, where a ',' or the closing ']' comes next.
  let state: ArrayState = from ? 'afterRecord' : 'opening';
  let index = from?.index ?? 0;
  let line = from?.line ?? 1;
  let recordLine = line;
  /** Bytes of the file before the chunk being pushed. */
  let offset = from?.byte ?? 0;
  let text = new RecordText();
  /** The closing brackets the current record still owes, innermost last, up to MAX_RECORD_NESTING. */
  const owed: number[] = [];
  /** Brackets open past MAX_RECORD_NESTING, counted, not kept: a file of nothing but '[' holds memory still. */
  let deeper = 0;
  /** The current record went past MAX_RECORD_NESTING. */
  let tooDeep = false;
  let inString = false;
  let escaped = false;
  /** A record that is a bare number or literal, ended by a comma, bracket or whitespace. */
  let bare = false;

  /** Ends the record whose last byte is just before `at` in the current chunk. */
  const endRecord = (at: number): RecordEntry => {
    const entryIndex = index;
    index += 1;
    state = 'afterRecord';
    const taken = text.take();
    text = new RecordText();
    const where = `record ${entryIndex} (line ${recordLine})`;
    const after: ReadCursor = { format: 'array', byte: offset + at, index, line };
    const deep = tooDeep;
    tooDeep = false;
    if (deep) return { index: entryIndex, malformed: `${where} ${TOO_DEEP}`, fatal: false, after };
    if ('problem' in taken) return { index: entryIndex, malformed: `${where} ${taken.problem}`, fatal: false, after };
    try {
      return { index: entryIndex, value: JSON.parse(taken.text) as unknown, after };
    } catch (error) {
      return {
        index: entryIndex,
        malformed: `${where} is not valid JSON: ${(error as Error).message}`,
        fatal: false,
        after,
      };
    }
  };

  const broken = (malformed: string): RecordEntry => {
    state = 'broken';
    return { index, malformed, fatal: true };
  };

  /** Scans the current record from `at`; returns where it stopped (the chunk's end, or just after the record). */
  const scanRecord = (chunk: Buffer, at: number, entries: RecordEntry[]): number => {
    let i = at;
    let nextQuote = -2;
    let nextBackslash = -2;
    while (i < chunk.length) {
      if (escaped) {
        escaped = false;
        i += 1;
        continue;
      }
      if (inString) {
        if (nextQuote !== -1 && nextQuote < i) nextQuote = chunk.indexOf(QUOTE, i);
        if (nextBackslash !== -1 && nextBackslash < i) nextBackslash = chunk.indexOf(BACKSLASH, i);
        if (nextBackslash >= 0 && (nextQuote < 0 || nextBackslash < nextQuote)) {
          escaped = true;
          i = nextBackslash + 1;
          continue;
        }
        if (nextQuote < 0) break;
        inString = false;
        i = nextQuote + 1;
        if (owed.length === 0) {
          text.add(chunk.subarray(at, i));
          entries.push(endRecord(i));
          return i;
        }
        continue;
      }
      const byte = chunk[i];
      if (bare) {
        if (byte === COMMA || byte === CLOSE_BRACKET || byte === CLOSE_BRACE || isWhitespace(byte)) {
          bare = false;
          text.add(chunk.subarray(at, i));
          entries.push(endRecord(i));
          return i;
        }
      } else if (byte === QUOTE) {
        inString = true;
      } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
        if (owed.length < MAX_RECORD_NESTING) {
          owed.push(byte === OPEN_BRACE ? CLOSE_BRACE : CLOSE_BRACKET);
        } else {
          deeper += 1;
          tooDeep = true;
        }
      } else if (deeper > 0 && (byte === CLOSE_BRACE || byte === CLOSE_BRACKET)) {
        // Past the limit, which bracket closes which is not kept: the record is refused anyway.
        deeper -= 1;
      } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
        const expected = owed.pop();
        if (byte !== expected) {
          entries.push(
            broken(
              `the JSON array breaks at line ${line}: a '${String.fromCharCode(byte)}' in record ${index} closes nothing it opened; the records from there on were not read`,
            ),
          );
          return chunk.length;
        }
        if (owed.length === 0) {
          text.add(chunk.subarray(at, i + 1));
          entries.push(endRecord(i + 1));
          return i + 1;
        }
      } else if (byte === NEWLINE) {
        line += 1;
      }
      i += 1;
    }
    text.add(chunk.subarray(at));
    return chunk.length;
  };

  return {
    push(chunk) {
      const entries: RecordEntry[] = [];
      let i = 0;
      if (state === 'opening' && startsWith(chunk, BYTE_ORDER_MARK)) i = BYTE_ORDER_MARK.length;
      while (i < chunk.length && state !== 'broken') {
        if (state === 'record') {
          i = scanRecord(chunk, i, entries);
          continue;
        }
        const byte = chunk[i] ?? 0;
        if (byte === NEWLINE) line += 1;
        if (isWhitespace(byte)) {
          i += 1;
          continue;
        }
        if (state === 'opening') {
          // The head was checked: the first thing is '['.
          state = 'firstRecord';
          i += 1;
        } else if ((state === 'firstRecord' || state === 'nextRecord') && byte === CLOSE_BRACKET) {
          // A comma before the closing bracket loses nothing: it is let pass.
          state = 'closed';
          i += 1;
        } else if (state === 'firstRecord' || state === 'nextRecord') {
          // The record is scanned from its first byte on, which scanRecord reads as it reads the rest.
          state = 'record';
          recordLine = line;
          bare = byte !== QUOTE && byte !== OPEN_BRACE && byte !== OPEN_BRACKET;
        } else if (state === 'afterRecord' && byte === COMMA) {
          state = 'nextRecord';
          i += 1;
        } else if (state === 'afterRecord' && byte === CLOSE_BRACKET) {
          state = 'closed';
          i += 1;
        } else if (state === 'afterRecord') {
          entries.push(
            broken(
              `the JSON array breaks at line ${line}: after record ${index - 1} comes '${String.fromCharCode(byte)}' where a ',' or ']' belongs; the records from there on were not read`,
            ),
          );
        } else {
          entries.push(
            broken(`the records file goes on at line ${line} after its JSON array closed: what follows was not read`),
          );
        }
      }
      offset += chunk.length;
      return entries;
    },
    end() {
      if (state === 'closed' || state === 'broken') return [];
      const entries: RecordEntry[] = [];
      if (state === 'record' && bare) entries.push(endRecord(0));
      const where =
        state === 'record' ? `, inside the next record${recordLine === line ? '' : ` (from line ${recordLine})`}` : '';
      state = 'broken';
      entries.push({
        index,
        malformed: `the records file is not valid JSON after record ${index}: it breaks off at line ${line}${where}; its JSON array is never closed`,
        fatal: true,
      });
      return entries;
    },
  };
}

const asBuffer = (chunk: Buffer | string) => (typeof chunk === 'string' ? Buffer.from(chunk) : chunk);

/** The first HEAD_BYTES of the body (all of it when shorter), and whether that is the whole body. */
async function readHead(chunks: AsyncIterator<Buffer | string>): Promise<{ head: Buffer; wholeFile: boolean }> {
  const parts: Buffer[] = [];
  let bytes = 0;
  while (bytes < HEAD_BYTES) {
    const next = await chunks.next();
    if (next.done) return { head: Buffer.concat(parts), wholeFile: true };
    const chunk = asBuffer(next.value);
    parts.push(chunk);
    bytes += chunk.length;
  }
  return { head: Buffer.concat(parts), wholeFile: false };
}

/**
 * The records of `body`: the whole file, or, with `resume`, the file from the cursor on (the body
 * then starts at that byte; the head was looked at when the reading began).
 */
export async function* readRecords(body: Readable, resume?: ReadCursor): AsyncGenerator<RecordEntry> {
  const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  try {
    let splitter: Splitter;
    let entries: RecordEntry[] = [];
    if (resume) {
      splitter = resume.format === 'lines' ? lineSplitter(resume) : arraySplitter(resume);
    } else {
      const { head, wholeFile } = await readHead(chunks);
      const fileProblem = recordsFileProblem(head, wholeFile);
      if (fileProblem !== undefined) {
        yield { index: 0, malformed: `the records file ${fileProblem}`, fatal: true, fileProblem };
        return;
      }
      splitter = isJsonLines(head) ? lineSplitter() : arraySplitter();
      entries = splitter.push(head);
    }
    const fatal = (pushed: RecordEntry[]) => pushed.some((entry) => 'malformed' in entry && entry.fatal);
    yield* entries;
    while (!fatal(entries)) {
      const next = await chunks.next();
      if (next.done) {
        yield* splitter.end();
        return;
      }
      entries = splitter.push(asBuffer(next.value));
      yield* entries;
    }
  } finally {
    // However reading ends (done, a break, a throw), the S3 connection goes back.
    body.destroy();
  }
}
