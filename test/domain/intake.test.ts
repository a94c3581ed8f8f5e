import { intakeRunId, parseIntakeMessage } from '../../src/domain/intake';

const event = (key: string, eventName = 'ObjectCreated:Put', eTag = 'abc') =>
  JSON.stringify({
    Records: [{ eventSource: 'aws:s3', eventName, s3: { bucket: { name: 'photos' }, object: { key, eTag } } }],
  });

test('an upload under the prefix is a file to start; its key is decoded as S3 encodes it', () => {
  expect(parseIntakeMessage(event('records/team+a%2Bb.jsonl'), 'records/')).toEqual({
    files: [{ Bucket: 'photos', Key: 'records/team a+b.jsonl', version: 'abc' }],
    ignored: 0,
  });
});

test('other prefixes, folders and other events are ignored', () => {
  expect(parseIntakeMessage(event('elsewhere/x.jsonl'), 'records/')).toEqual({ files: [], ignored: 1 });
  expect(parseIntakeMessage(event('records/'), 'records/')).toEqual({ files: [], ignored: 1 });
  expect(parseIntakeMessage(event('records/x.jsonl', 'ObjectRemoved:Delete'), 'records/')).toEqual({
    files: [],
    ignored: 1,
  });
  // What prepare and validate write beside a records file is no records file.
  expect(parseIntakeMessage(event('records/x.jsonl.unplaced.jsonl'), 'records/')).toEqual({ files: [], ignored: 1 });
  expect(parseIntakeMessage(event('records/x.jsonl.failures.jsonl'), 'records/')).toEqual({ files: [], ignored: 1 });
});

test('a key S3 could not have encoded makes the message malformed rather than stopping the watcher', () => {
  expect(parseIntakeMessage(event('records/100%.jsonl'), 'records/')).toEqual({
    malformed: 'the object key "records/100%.jsonl" is not URL-encoded as S3 writes keys',
  });
});

test('an upload is told apart by its sequencer before its ETag: the same bytes uploaded again are a new upload', () => {
  const body = (sequencer: string) =>
    JSON.stringify({
      Records: [
        {
          eventSource: 'aws:s3',
          eventName: 'ObjectCreated:Put',
          s3: { bucket: { name: 'photos' }, object: { key: 'records/a.jsonl', eTag: 'same', sequencer } },
        },
      ],
    });
  expect(parseIntakeMessage(body('0055AED6DCD90281E5'), 'records/')).toMatchObject({
    files: [{ version: '0055AED6DCD90281E5' }],
  });
});

test("an SNS-wrapped notification and S3's test event are understood; anything else is malformed", () => {
  expect(
    parseIntakeMessage(JSON.stringify({ Type: 'Notification', Message: event('records/x.jsonl') }), 'records/'),
  ).toMatchObject({ files: [{ Key: 'records/x.jsonl' }] });
  expect(parseIntakeMessage(JSON.stringify({ Event: 's3:TestEvent', Bucket: 'photos' }), 'records/')).toEqual({
    test: true,
  });
  expect(parseIntakeMessage('hello', 'records/')).toEqual({ malformed: 'the body is not JSON' });
  expect(parseIntakeMessage('{"a":1}', 'records/')).toEqual({
    malformed: 'the body is no S3 event notification (no Records)',
  });
});

test('one upload, one run id; a new upload of the same key, another', () => {
  const file = { Bucket: 'photos', Key: 'records/team a.jsonl', version: 'abc' };
  expect(intakeRunId(file)).toBe(intakeRunId({ ...file }));
  expect(intakeRunId(file)).toMatch(/^intake-team_a\.jsonl-[0-9a-f]{16}$/);
  expect(intakeRunId({ ...file, version: 'def' })).not.toBe(intakeRunId(file));
});
