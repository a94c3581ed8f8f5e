import { compareFindings, identitiesOf, identityOf, parityOf, type SearchFinding } from '../../src/domain/parity';

const OLD = '11111111-1111-1111-1111-111111111111';
const NEW = '22222222-2222-2222-2222-222222222222';

const found = (self: string, ...others: string[]): SearchFinding => ({
  missing: false,
  self,
  identities: [self, ...others].sort(),
});
const gone: SearchFinding = { missing: true };

test('a face is its user, else the image it came from', () => {
  expect(identityOf({ UserId: 'ana', ExternalImageId: 'photo-1' })).toBe('user:ana');
  expect(identityOf({ ExternalImageId: 'photo-1' })).toBe('image:photo-1');
  expect(identityOf({})).toBe('unnamed');
});

test('the identities of several faces are distinct and sorted', () => {
  expect(identitiesOf([{ UserId: 'bo' }, { ExternalImageId: 'x' }, { UserId: 'bo' }, { UserId: 'ana' }])).toEqual([
    'image:x',
    'user:ana',
    'user:bo',
  ]);
});

test('two searches agree when they find the same people, in any order', () => {
  const comparison = compareFindings(OLD, NEW, found('user:ana', 'user:bo'), {
    missing: false,
    self: 'user:ana',
    identities: ['user:bo', 'user:ana'],
  });

  expect(comparison).toMatchObject({ agree: true, samePerson: true });
});

test.each([
  ['another person', found('user:ana'), found('user:bo'), false],
  ['one look-alike more', found('user:ana'), found('user:ana', 'user:bo'), true],
  ['one look-alike fewer', found('user:ana', 'user:bo'), found('user:ana'), true],
  ['the new face gone', found('user:ana'), gone, false],
  ['the old face gone', gone, found('user:ana'), false],
])('two searches disagree on %s', (_, old, now, samePerson) => {
  const comparison = compareFindings(OLD, NEW, old, now);

  expect(comparison).toEqual({ OldFaceId: OLD, FaceId: NEW, old, new: now, agree: false, samePerson });
});

test('parity is the share of faces that agree, and counts the rows that map a face to someone else', () => {
  const ana = found('user:ana');

  expect(
    parityOf([
      compareFindings(OLD, NEW, ana, ana),
      compareFindings(OLD, NEW, ana, found('user:ana', 'user:cy')),
      compareFindings(OLD, NEW, ana, found('user:bo')),
      compareFindings(OLD, NEW, ana, ana),
    ]),
  ).toEqual({ compared: 4, agreeing: 2, share: 0.5, notSamePerson: 1 });
  expect(parityOf([])).toEqual({ compared: 0, agreeing: 0, share: 1, notSamePerson: 0 });
});
