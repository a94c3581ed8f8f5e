import { Readable } from 'node:stream';
import {
  HEAD_BYTES,
  type ReadCursor,
  readRecords,
  type RecordEntry,
  recordsFileProblem,
} from '../../src/records/reader';
import { MAX_RECORD_BYTES, MAX_RECORD_NESTING } from '../../src/domain/records';

/** The text as a stream cut into the given pieces, as S3 hands a body over in chunks. */
const streamOf = (...pieces: (string | Buffer)[]) => Readable.from(pieces.map((piece) => Buffer.from(piece)));

/** Every entry read, with where each lets a reading resume. */
async function readWithCursors(body: Readable, resume?: ReadCursor): Promise<RecordEntry[]> {
  const entries: RecordEntry[] = [];
  for await (const entry of readRecords(body, resume)) entries.push(entry);
  return entries;
}

/** The entries as a reader of records sees them, without the cursors (tested on their own below). */
async function read(...pieces: (string | Buffer)[]): Promise<RecordEntry[]> {
  return (await readWithCursors(streamOf(...pieces))).map(({ after: _after, ...entry }) => entry as RecordEntry);
}

const a = { Bucket: 'photos', Key: 'a.jpg' };
const b = { Bucket: 'photos', Key: 'b.jpg' };

test('a JSON array yields its records in order, even split mid-token across chunks', async () => {
  const text = JSON.stringify([a, b], null, 2);
  expect(await read(text.slice(0, 7), text.slice(7, 30), text.slice(30))).toEqual([
    { index: 0, value: a },
    { index: 1, value: b },
  ]);
});

test('JSON Lines yield one record a line; blank lines and CRLF are fine', async () => {
  expect(await read(`${JSON.stringify(a)}\r\n\r\n`, `${JSON.stringify(b)}\n`)).toEqual([
    { index: 0, value: a },
    { index: 1, value: b },
  ]);
});

test('a byte-order mark and leading whitespace, even in their own chunks, are skipped', async () => {
  expect(await read('\uFEFF', '  \n ', JSON.stringify([a]))).toEqual([{ index: 0, value: a }]);
  expect(await read('\uFEFF\n', JSON.stringify(a))).toEqual([{ index: 0, value: a }]);
});

test('a byte-order mark at the start of a line of JSON Lines, as files joined with cat have, is skipped', async () => {
  expect(await read(`${JSON.stringify(a)}\n\uFEFF${JSON.stringify(b)}\n`)).toEqual([
    { index: 0, value: a },
    { index: 1, value: b },
  ]);
});

test('a bad line in JSON Lines is reported with its line number and the rest still read', async () => {
  const entries = await read(`${JSON.stringify(a)}\n{"Bucket": "photos", \n${JSON.stringify(b)}\n`);
  expect(entries[0]).toEqual({ index: 0, value: a });
  expect(entries[1]).toMatchObject({ index: 1, fatal: false });
  expect((entries[1] as { malformed: string }).malformed).toMatch(/^line 2 is not valid JSON: /);
  expect(entries[2]).toEqual({ index: 2, value: b });
});

test('JSON Lines whose first line is an array are JSON Lines: that line is one record, for the schema to refuse', async () => {
  expect(await read(`${JSON.stringify([a])}\n${JSON.stringify(b)}\n`)).toEqual([
    { index: 0, value: [a] },
    { index: 1, value: b },
  ]);
});

test('a truncated JSON array yields what came before, then one fatal entry saying where', async () => {
  expect(await read(`[${JSON.stringify(a)},\n {"Bucket": "pho`)).toEqual([
    { index: 0, value: a },
    {
      index: 1,
      malformed:
        'the records file is not valid JSON after record 1: it breaks off at line 2, inside the next record; its JSON array is never closed',
      fatal: true,
    },
  ]);
  expect((await read(`[${JSON.stringify(a)},`)).at(-1)).toEqual({
    index: 1,
    malformed:
      'the records file is not valid JSON after record 1: it breaks off at line 1; its JSON array is never closed',
    fatal: true,
  });
});

test('a record of a JSON array that is not valid JSON is reported, and the records after it still read', async () => {
  const entries = await read(`[\n${JSON.stringify(a)},\n{"Bucket": "photos" "Key": "x.jpg"},\n${JSON.stringify(b)}\n]`);
  expect(entries[0]).toEqual({ index: 0, value: a });
  expect(entries[1]).toMatchObject({
    index: 1,
    fatal: false,
    malformed: expect.stringMatching(/^record 1 \(line 3\) is not valid JSON: /) as string,
  });
  expect(entries[2]).toEqual({ index: 2, value: b });
  expect(entries).toHaveLength(3);
});

test('where the JSON array itself breaks, the records before are kept and the break is the last entry', async () => {
  expect(await read(`[${JSON.stringify(a)}\n${JSON.stringify(b)}]`)).toEqual([
    { index: 0, value: a },
    {
      index: 1,
      malformed:
        "the JSON array breaks at line 2: after record 0 comes '{' where a ',' or ']' belongs; the records from there on were not read",
      fatal: true,
    },
  ]);
  expect(await read(`[\n${JSON.stringify(a)}\n]\n[\n${JSON.stringify(b)}\n]`)).toEqual([
    { index: 0, value: a },
    {
      index: 1,
      malformed: 'the records file goes on at line 4 after its JSON array closed: what follows was not read',
      fatal: true,
    },
  ]);
  expect(await read('[{"Faces": [1, 2}, {"Key": "b"}]')).toEqual([
    {
      index: 0,
      malformed:
        "the JSON array breaks at line 1: a '}' in record 0 closes nothing it opened; the records from there on were not read",
      fatal: true,
    },
  ]);
});

test('brackets, quotes and escapes inside strings do not end a record, wherever the chunks are cut', async () => {
  const tricky = { Bucket: 'photos', Key: 'a "quoted" [key] {with} \\ and , comma.jpg' };
  const text = JSON.stringify([tricky, b]);
  for (let cut = 1; cut < text.length; cut += 1) {
    expect(await read(text.slice(0, cut), text.slice(cut))).toEqual([
      { index: 0, value: tricky },
      { index: 1, value: b },
    ]);
  }
});

test('items of a JSON array that are no objects are read as they are, for the schema to refuse', async () => {
  expect(await read('[1, "key.jpg", null, [true], {"Key": "b"}]')).toEqual([
    { index: 0, value: 1 },
    { index: 1, value: 'key.jpg' },
    { index: 2, value: null },
    { index: 3, value: [true] },
    { index: 4, value: { Key: 'b' } },
  ]);
});

test('a record over MAX_RECORD_BYTES is reported with its size, without being held, and reading goes on', async () => {
  const huge = JSON.stringify({ ...a, Notes: 'x'.repeat(MAX_RECORD_BYTES) });
  const size = Buffer.byteLength(huge).toLocaleString('en-US');
  // In pieces, as S3 hands over a long record.
  const pieces = (text: string) => text.match(/[^]{1,65536}/g) ?? [];
  expect(await read(...pieces(`${JSON.stringify(a)}\n${huge}\n${JSON.stringify(b)}\n`))).toEqual([
    { index: 0, value: a },
    { index: 1, malformed: `line 2 is too large for a record: ${size} bytes, over the limit of 131,072`, fatal: false },
    { index: 2, value: b },
  ]);
  expect(await read(...pieces(`[${JSON.stringify(a)},\n${huge},\n${JSON.stringify(b)}]`))).toEqual([
    { index: 0, value: a },
    {
      index: 1,
      malformed: `record 1 (line 2) is too large for a record: ${size} bytes, over the limit of 131,072`,
      fatal: false,
    },
    { index: 2, value: b },
  ]);
});

test('a record nested deeper than MAX_RECORD_NESTING is refused before it is parsed, and reading goes on', async () => {
  // As text: JSON.stringify of the parsed record would itself overflow the stack.
  const nested = (levels: number) =>
    `{"Bucket":"photos","Key":"a.jpg","Deep":${'['.repeat(levels)}${']'.repeat(levels)}}`;
  const deep = nested(5_000);
  const justDeepEnough = nested(MAX_RECORD_NESTING - 1);

  expect(await read(`${JSON.stringify(a)}\n${deep}\n${justDeepEnough}\n`)).toEqual([
    { index: 0, value: a },
    { index: 1, malformed: 'line 2 nests its brackets more than 32 levels deep', fatal: false },
    { index: 2, value: JSON.parse(justDeepEnough) as unknown },
  ]);
  expect(await read(`[${JSON.stringify(a)},\n${deep},\n${justDeepEnough}]`)).toEqual([
    { index: 0, value: a },
    { index: 1, malformed: 'record 1 (line 2) nests its brackets more than 32 levels deep', fatal: false },
    { index: 2, value: JSON.parse(justDeepEnough) as unknown },
  ]);
});

test('a JSON array that opens 40 MB of brackets is read in bounded memory and ends in one fatal entry', async () => {
  const chunk = Buffer.alloc(1024 * 1024, '[');
  const body = Readable.from(
    (function* () {
      yield Buffer.from(`[${JSON.stringify(a)},\n`);
      for (let i = 0; i < 40; i += 1) yield chunk;
    })(),
  );
  const heapBefore = process.memoryUsage().heapUsed;
  let heapMost = heapBefore;
  const entries: RecordEntry[] = [];
  for await (const entry of readRecords(body)) {
    entries.push(entry);
    heapMost = Math.max(heapMost, process.memoryUsage().heapUsed);
  }
  heapMost = Math.max(heapMost, process.memoryUsage().heapUsed);

  expect(entries.map(({ after: _after, ...entry }) => entry)).toEqual([
    { index: 0, value: a },
    {
      index: 1,
      malformed:
        'the records file is not valid JSON after record 1: it breaks off at line 2, inside the next record; its JSON array is never closed',
      fatal: true,
    },
  ]);
  // A bracket kept for each byte would take hundreds of megabytes.
  expect(heapMost - heapBefore).toBeLessThan(32 * 1024 * 1024);
});

test('a record that is not UTF-8 is reported as such, not read with replacement characters', async () => {
  const latin1 = Buffer.concat([
    Buffer.from('{"Bucket": "photos", "Key": "Jos'),
    Buffer.from([0xe9]),
    Buffer.from('.jpg"}'),
  ]);
  expect(await read(`${JSON.stringify(a)}\n`, latin1)).toEqual([
    { index: 0, value: a },
    {
      index: 1,
      malformed: 'line 2 is not UTF-8 text (saved as Windows-1252 or Latin-1?): save the records file as UTF-8',
      fatal: false,
    },
  ]);
});

test('a file that is no records file as a whole is one fatal entry naming its problem', async () => {
  const empty = {
    index: 0,
    malformed: 'the records file is empty: it holds no records',
    fatal: true,
    fileProblem: 'is empty: it holds no records',
  };
  expect(await read('')).toEqual([empty]);
  expect(await read('\uFEFF \n\t')).toEqual([empty]);
  const notJson = "must be a JSON array of records or JSON Lines, one record object a line; it starts with '\"'";
  expect(await read('"just a string"')).toEqual([
    { index: 0, malformed: `the records file ${notJson}`, fatal: true, fileProblem: notJson },
  ]);
});

describe('what makes a whole file no records file, told from its head', () => {
  const problem = (text: string | Buffer, wholeFile = true) => recordsFileProblem(Buffer.from(text), wholeFile);

  test.each([
    ['empty', '', 'is empty: it holds no records'],
    ['a BOM and blank lines', '\uFEFF\r\n \t\n', 'is empty: it holds no records'],
    ['an empty array', ' [ \n ] \n', 'is an empty JSON array: it holds no records'],
    [
      'UTF-16 with its mark',
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('[{}]', 'utf16le')]),
      'is UTF-16 text: save it as UTF-8 (with or without a byte-order mark)',
    ],
    [
      'UTF-16 without a mark',
      Buffer.from('{"Bucket": "b"}', 'utf16le'),
      'is UTF-16 text: save it as UTF-8 (with or without a byte-order mark)',
    ],
    ['gzip', Buffer.from([0x1f, 0x8b, 0x08, 0x00]), 'is gzip-compressed: decompress it first'],
    [
      'a ZIP archive',
      Buffer.from('PK\x03\x04rest', 'latin1'),
      'is a ZIP archive (an Excel workbook?), not text: save the records as JSON',
    ],
    [
      'a CSV',
      'Bucket,Key\nphotos,a.jpg\n',
      "must be a JSON array of records or JSON Lines, one record object a line; it starts with 'B'",
    ],
    [
      'records spread over lines',
      '{\n  "Bucket": "photos"\n}\n',
      'is not JSON Lines: its first line is "{" alone, so its records (or one JSON object) spread over several lines; give one record object a line (jq -c writes them so), or a JSON array of records',
    ],
    [
      'one object wrapping the records',
      `${JSON.stringify({ Items: [a, b] })}\n`,
      'is one JSON object, not records: its member "Items" holds an array; give that array as the records file, or one record a line',
    ],
  ])('%s', (_, text, expected) => {
    expect(problem(text)).toBe(expected);
  });

  test.each([
    ['JSON Lines', `${JSON.stringify(a)}\n${JSON.stringify(b)}\n`],
    ['a JSON array', JSON.stringify([a, b], null, 2)],
    ['one record', JSON.stringify(a)],
    ['an object wrapping records, then a record', `${JSON.stringify({ Items: [a] })}\n${JSON.stringify(b)}\n`],
    ['a first line that is a broken record', `{"Bucket": "photos", \n${JSON.stringify(b)}\n`],
  ])('%s is no problem', (_, text) => {
    expect(problem(text)).toBeUndefined();
  });

  test('a head that is not the whole file says nothing of what it cannot see', () => {
    expect(problem(' \n', false)).toBeUndefined();
    expect(problem('[ ]', false)).toBeUndefined();
    expect(problem(JSON.stringify({ Items: [a] }), false)).toBeUndefined();
  });
});

test('a large array streams: records arrive before the file ends', async () => {
  let produced = 0;
  const record = (n: number) => `${n > 1 ? ',' : ''}${JSON.stringify({ ...a, Key: `${n}.jpg` })}`;
  function* endless(): Generator<Buffer> {
    yield Buffer.from('[');
    for (;;) {
      produced += 1;
      yield Buffer.from(record(produced));
    }
  }
  const seen: unknown[] = [];
  for await (const entry of readRecords(Readable.from(endless()))) {
    seen.push(entry);
    if (seen.length === 1000) break;
  }
  expect(seen).toHaveLength(1000);
  // Only the head and a little more were read ahead: the reader never waited for the end of this endless file.
  expect(produced).toBeLessThan(1000 + HEAD_BYTES / record(1000).length + 100);
});

test('a failure to read the body partway is thrown, not mistaken for a broken file', async () => {
  for (const opening of [`[${JSON.stringify(a)},`, `${JSON.stringify(a)}\n`]) {
    // eslint-disable-next-line @typescript-eslint/require-await -- a source that fails between chunks
    async function* resetConnection(): AsyncGenerator<Buffer> {
      yield Buffer.from(opening);
      throw new Error('connection reset');
    }
    const entries: RecordEntry[] = [];
    const reading = (async () => {
      for await (const entry of readRecords(Readable.from(resetConnection()))) entries.push(entry);
    })();
    await expect(reading).rejects.toThrow('connection reset');
    expect(entries.filter((entry) => 'malformed' in entry)).toEqual([]);
  }
});

describe('resuming from a cursor', () => {
  const c = { Bucket: 'photos', Key: 'c\n"]}.jpg' };
  const files = {
    'JSON Lines with blank lines, CRLF and a bad line': `${JSON.stringify(a)}\r\n\n{not json\n${JSON.stringify(b)}\n\n${JSON.stringify(c)}`,
    'a JSON array, pretty-printed, with a record that is not valid JSON': `\uFEFF[\n  ${JSON.stringify(a)},\n  {"Key": tru},\n  ${JSON.stringify(b, null, 2)}, ${JSON.stringify(c)}\n]\n`,
    'a JSON array cut short': `[${JSON.stringify(a)}, ${JSON.stringify(b)}, {"Bucket": "pho`,
  };

  test.each(Object.entries(files))(
    '%s: read again from after any record, the rest comes as it did, with the same indexes and lines',
    async (_name, text) => {
      const file = Buffer.from(text);
      // Cut into small pieces, so cursors fall inside chunks and at their edges.
      const pieces = Array.from({ length: Math.ceil(file.length / 7) }, (_, i) => file.subarray(i * 7, i * 7 + 7));
      const whole = await readWithCursors(Readable.from(pieces));
      const cursors = whole.flatMap((entry) => (entry.after ? [entry.after] : []));
      expect(cursors.length).toBeGreaterThanOrEqual(2);

      for (const [i, cursor] of cursors.entries()) {
        const rest = await readWithCursors(Readable.from([file.subarray(cursor.byte)]), cursor);
        expect(rest).toEqual(whole.slice(i + 1));
      }
    },
  );

  test('a cursor at the very end of the file reads nothing more', async () => {
    const text = `${JSON.stringify(a)}\n`;
    const [entry] = await readWithCursors(streamOf(text));
    expect(entry?.after).toEqual({ format: 'lines', byte: Buffer.byteLength(text), index: 1, line: 2 });
    expect(await readWithCursors(Readable.from([]), entry?.after)).toEqual([]);
  });
});
