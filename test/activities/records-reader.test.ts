import { Readable } from 'node:stream';
import { readRecords, type RecordEntry } from '../../src/activities/records-reader';

/** The text as a stream cut into the given pieces, as S3 hands a body over in chunks. */
const streamOf = (...pieces: string[]) => Readable.from(pieces.map((piece) => Buffer.from(piece)));

async function read(...pieces: string[]): Promise<RecordEntry[]> {
  const entries: RecordEntry[] = [];
  for await (const entry of readRecords(streamOf(...pieces))) entries.push(entry);
  return entries;
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

test('a bad line in JSON Lines is reported with its line number and the rest still read', async () => {
  const entries = await read(`${JSON.stringify(a)}\n{"Bucket": "photos", \n${JSON.stringify(b)}\n`);
  expect(entries[0]).toEqual({ index: 0, value: a });
  expect(entries[1]).toMatchObject({ index: 1, fatal: false });
  expect((entries[1] as { malformed: string }).malformed).toMatch(/^line 2 is not valid JSON: /);
  expect(entries[2]).toEqual({ index: 2, value: b });
});

test('a truncated JSON array yields what came before, then one fatal entry saying where', async () => {
  const entries = await read(`[${JSON.stringify(a)}, {"Bucket": "pho`);
  expect(entries[0]).toEqual({ index: 0, value: a });
  expect(entries).toHaveLength(2);
  expect(entries[1]).toMatchObject({ index: 1, fatal: true });
  expect((entries[1] as { malformed: string }).malformed).toMatch(/^the records file is not valid JSON after record 1: /);
});

test('an empty file, or one of whitespace only, has no records', async () => {
  expect(await read('')).toEqual([]);
  expect(await read('\uFEFF \n\t')).toEqual([]);
});

test('a file that is neither an array nor objects is one fatal entry', async () => {
  expect(await read('"just a string"')).toEqual([
    {
      index: 0,
      malformed: "the records file must be a JSON array of records or JSON Lines, one record object a line; it starts with '\"'",
      fatal: true,
    },
  ]);
});

test('a large array streams: records arrive before the file ends', async () => {
  let produced = 0;
  function* endless(): Generator<Buffer> {
    yield Buffer.from('[');
    for (;;) {
      produced += 1;
      yield Buffer.from(`${produced > 1 ? ',' : ''}${JSON.stringify({ ...a, Key: `${produced}.jpg` })}`);
    }
  }
  const seen: unknown[] = [];
  for await (const entry of readRecords(Readable.from(endless()))) {
    seen.push(entry);
    if (seen.length === 1000) break;
  }
  expect(seen).toHaveLength(1000);
  // Only a little read-ahead: the reader never waited for the end of this endless file.
  expect(produced).toBeLessThan(5000);
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
