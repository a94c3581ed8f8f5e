import { onOlderModels, PlanError, planOf, planned, targetsOf } from '../../src/domain/plans';

const described = (collectionId: string, faceModelVersion: string, faces = 10) => ({
  collectionId,
  faceModelVersion,
  faces,
  users: 0,
});

test('--older-than keeps collections on models older than the version, compared as versions, not as text', () => {
  const collections = [described('a', '4.0'), described('b', '6.0'), described('c', '7.0'), described('d', '10.0')];

  expect(onOlderModels(collections, '7.0').map(({ collectionId }) => collectionId)).toEqual(['a', 'b']);
  expect(onOlderModels(collections, undefined)).toEqual(collections);
});

test('each target is the template with the old name in place of {collection}, wherever it stands', () => {
  expect(targetsOf('{collection}-v7', ['a', 'b'])).toEqual(
    new Map([
      ['a', 'a-v7'],
      ['b', 'b-v7'],
    ]),
  );
  expect(targetsOf('new.{collection}.{collection}', ['a'])).toEqual(new Map([['a', 'new.a.a']]));
});

test('a template that names no old collection, names one the plan migrates, or gives a name Rekognition refuses is refused', () => {
  expect(() => targetsOf('faces-v7', ['a'])).toThrow(PlanError);
  expect(() => targetsOf('{collection}-v7', ['a', 'a-v7'])).toThrow(
    'the target a-v7 of a is itself a collection the plan migrates; narrow the plan with --older-than or --collections',
  );
  expect(() => targetsOf('{collection} v7', ['a'])).toThrow(
    'the target a v7 of a is not a collection name: letters, digits and _ . - only, at most 255',
  );
  expect(() => targetsOf(`{collection}${'x'.repeat(255)}`, ['a'])).toThrow(PlanError);
});

test('a collection costs one call a face until its images are counted, and its hours are the calls at the rate', () => {
  expect(planned(described('a', '6.0', 7_200), 2)).toMatchObject({
    indexFacesCalls: 7_200,
    callsCounted: false,
    hours: 1,
  });
  expect(planned(described('a', '6.0', 7_200), 2, 3_600)).toMatchObject({
    indexFacesCalls: 3_600,
    callsCounted: true,
    hours: 0.5,
  });
});

test('the plan totals its collections', () => {
  const plan = planOf(
    [planned({ ...described('a', '6.0', 100), users: 3 }, 10, 40), planned(described('b', '6.0', 50), 10)],
    { region: 'eu-west-1', tps: 10, createdAt: '2026-12-05T00:00:00.000Z' },
  );

  expect(plan.totals).toEqual({ collections: 2, faces: 150, users: 3, indexFacesCalls: 90, hours: 90 / 10 / 3600 });
  expect(planOf([], { region: 'eu-west-1', tps: 10, createdAt: '' }).totals).toEqual({
    collections: 0,
    faces: 0,
    users: 0,
    indexFacesCalls: 0,
    hours: 0,
  });
});
