import { Readable } from 'node:stream';
import { ReasonCode, type ReasonCounts } from '../../src/domain/reasons';
import type { RecordsSelection } from '../../src/domain/records';
import { checkedRecords, type RecordOutcome } from '../../src/records/pipeline';
import { HEAD_BYTES, readRecords } from '../../src/records/reader';

const faceId = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const box = { Width: 0.2, Height: 0.3, Left: 0.1, Top: 0.1 };
const record = (key: string, collectionId?: string, faces = [faceId(1)]) => ({
  Bucket: 'photos',
  Key: key,
  ...(collectionId === undefined ? {} : { CollectionId: collectionId }),
  Faces: faces.map((FaceId) => ({ FaceId, BoundingBoxes: box })),
});

const jsonLines = (...lines: (object | string)[]) =>
  lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n') + '\n';

/** Every outcome of the file's text, and the refusals counted. */
async function check(
  text: string,
  selection?: RecordsSelection,
): Promise<{ outcomes: RecordOutcome[]; refusedByReason: ReasonCounts }> {
  const refusedByReason: ReasonCounts = {};
  const outcomes: RecordOutcome[] = [];
  const entries = readRecords(Readable.from([Buffer.from(text)]));
  for await (const outcome of checkedRecords(entries, { selection, refusedByReason })) outcomes.push(outcome);
  return { outcomes, refusedByReason };
}

/** The outcomes without where reading may resume: the reader's own tests cover the cursors. */
const withoutCursors = (outcomes: RecordOutcome[]) => outcomes.map(({ after: _after, ...outcome }) => outcome);

const summary = (outcomes: RecordOutcome[]) =>
  outcomes.map((outcome) => ('reason' in outcome ? `${outcome.kind} ${outcome.reason}` : outcome.kind));

test('valid records are accepted in file order; the refused ones say why, and are counted by reason', async () => {
  const extra = { ...record('a.jpg'), Note: 'a column of my own' };
  const { outcomes, refusedByReason } = await check(
    jsonLines(
      extra,
      { Bucket: 'photos', Faces: [] },
      '{"Bucket": ',
      record('twice.jpg', undefined, [faceId(2), faceId(2)]),
      record('b.jpg'),
    ),
  );
  expect(withoutCursors(outcomes)).toEqual([
    { kind: 'accepted', index: 0, record: record('a.jpg'), value: extra },
    {
      kind: 'invalid',
      index: 1,
      reason: ReasonCode.InvalidRecord,
      detail: 'Key is missing; Faces must hold at least one face',
      value: { Bucket: 'photos', Faces: [] },
    },
    {
      kind: 'malformed',
      index: 2,
      reason: ReasonCode.InvalidRecord,
      detail: expect.stringMatching(/^line 3 is not valid JSON: /) as string,
      fatal: false,
    },
    {
      kind: 'invalid',
      index: 3,
      reason: ReasonCode.DuplicateFaceId,
      detail: `FaceId ${faceId(2)} appears more than once`,
      value: record('twice.jpg', undefined, [faceId(2), faceId(2)]),
    },
    { kind: 'accepted', index: 4, record: record('b.jpg'), value: record('b.jpg') },
  ]);
  expect(refusedByReason).toEqual({ [ReasonCode.InvalidRecord]: 2, [ReasonCode.DuplicateFaceId]: 1 });
});

test('where a JSON array breaks off, the break is refused as the last outcome, marked fatal', async () => {
  const text = `[${JSON.stringify(record('a.jpg'))}, ${JSON.stringify(record('b.jpg'))}`;
  const { outcomes, refusedByReason } = await check(text);
  expect(summary(outcomes)).toEqual(['accepted', 'accepted', `malformed ${ReasonCode.InvalidRecord}`]);
  expect(outcomes[2]).toMatchObject({
    index: 2,
    fatal: true,
    detail:
      'the records file is not valid JSON after record 2: it breaks off at line 1; its JSON array is never closed',
  });
  expect(refusedByReason).toEqual({ [ReasonCode.InvalidRecord]: 1 });
});

test('a file that is no records file is one refusal naming what is wrong with it', async () => {
  const { outcomes, refusedByReason } = await check('');
  expect(withoutCursors(outcomes)).toEqual([
    {
      kind: 'malformed',
      index: 0,
      reason: ReasonCode.InvalidRecord,
      detail: 'the records file is empty: it holds no records',
      fatal: true,
      fileProblem: 'is empty: it holds no records',
    },
  ]);
  expect(refusedByReason).toEqual({ [ReasonCode.InvalidRecord]: 1 });
});

test('counts go on from the ones given: a resumed split adds to what it counted before', async () => {
  const refusedByReason: ReasonCounts = { [ReasonCode.InvalidRecord]: 5, [ReasonCode.DuplicateFaceId]: 1 };
  const body = Readable.from([Buffer.from(jsonLines(record('c.jpg', undefined, [faceId(3), faceId(3)]), 'not json'))]);
  const outcomes: RecordOutcome[] = [];
  for await (const outcome of checkedRecords(readRecords(body), { refusedByReason })) outcomes.push(outcome);
  expect(summary(outcomes)).toEqual([`invalid ${ReasonCode.DuplicateFaceId}`, `malformed ${ReasonCode.InvalidRecord}`]);
  expect(refusedByReason).toEqual({ [ReasonCode.InvalidRecord]: 6, [ReasonCode.DuplicateFaceId]: 2 });
});

describe('runs of many collections sharing one records file', () => {
  const text = jsonLines(record('a.jpg', 'faces-v7'), record('b.jpg', 'other-v7'), record('c.jpg'), 'not json', {
    ...record('d.jpg', 'faces-v7'),
    Faces: [],
  });

  test('a run takes the records naming its collection and passes over the rest', async () => {
    const { outcomes, refusedByReason } = await check(text, { collectionId: 'faces-v7', refusesUnnamed: false });
    expect(summary(outcomes)).toEqual([
      'accepted',
      'otherRun',
      'otherRun',
      'otherRun',
      `invalid ${ReasonCode.InvalidRecord}`,
    ]);
    expect(outcomes[1]).toMatchObject({ kind: 'otherRun', index: 1, fatal: false });
    expect(outcomes[4]).toMatchObject({ index: 4, detail: 'Faces must hold at least one face' });
    expect(refusedByReason).toEqual({ [ReasonCode.InvalidRecord]: 1 });
  });

  test('the run refusing unnamed records refuses those and the lines that are no records, once each', async () => {
    const { outcomes, refusedByReason } = await check(text, { collectionId: 'other-v7', refusesUnnamed: true });
    expect(summary(outcomes)).toEqual([
      'otherRun',
      'accepted',
      `invalid ${ReasonCode.InvalidRecord}`,
      `malformed ${ReasonCode.InvalidRecord}`,
      'otherRun',
    ]);
    expect(outcomes[2]).toMatchObject({
      index: 2,
      detail: 'CollectionId is missing: a run without a target indexes each record into the collection it names',
    });
    expect(refusedByReason).toEqual({ [ReasonCode.InvalidRecord]: 2 });
  });

  test('where the file breaks off, a run that does not refuse it still hears that nothing after was read', async () => {
    const broken = `[${JSON.stringify(record('a.jpg', 'faces-v7'))}`;
    const { outcomes, refusedByReason } = await check(broken, { collectionId: 'faces-v7', refusesUnnamed: false });
    expect(withoutCursors(outcomes)).toEqual([
      { kind: 'accepted', index: 0, record: record('a.jpg', 'faces-v7'), value: record('a.jpg', 'faces-v7') },
      { kind: 'otherRun', index: 1, fatal: true },
    ]);
    expect(refusedByReason).toEqual({});
  });
});

test('only the record being checked is held: outcomes come as the file is read, not after it', async () => {
  let linesRead = 0;
  function* endless(): Generator<Buffer> {
    for (;;) {
      linesRead += 1;
      yield Buffer.from(`${JSON.stringify(record(`${linesRead}.jpg`))}\n`);
    }
  }
  let accepted = 0;
  for await (const outcome of checkedRecords(readRecords(Readable.from(endless())))) {
    if (outcome.kind === 'accepted') accepted += 1;
    if (accepted === 20_000) break;
  }
  // The reader looks at the file's head first: a line here is over 100 bytes.
  expect(linesRead).toBeLessThan(20_000 + HEAD_BYTES / 100);
});
