/**
 * The corpus table and its files agree: every file is a case, every case's input exists, every
 * generated input has its maker, and there are at least 30 cases.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { CASES, inputOf, MADE_BY_THEIR_TEST } from './corpus';

const FIXTURES = path.resolve(__dirname, '../fixtures/bad-input');

test('the corpus holds at least 30 cases, each named once', () => {
  expect(CASES.length).toBeGreaterThanOrEqual(30);
  expect(new Set(CASES.map((testCase) => testCase.name)).size).toBe(CASES.length);
});

test('every file of the corpus is a case, and every case has its input', () => {
  const files = ['records', 'files'].flatMap((folder) =>
    readdirSync(path.join(FIXTURES, folder)).map((name) => `${folder}/${name}`),
  );
  const inputs = CASES.map((testCase) => testCase.input);

  expect(files.filter((file) => !inputs.includes(file))).toEqual([]);
  expect(inputs.filter((input) => !input.startsWith('generated:') && !existsSync(path.join(FIXTURES, input)))).toEqual(
    [],
  );
  for (const testCase of CASES.filter(
    (each) => each.input.startsWith('generated:') && !MADE_BY_THEIR_TEST.includes(each.input),
  )) {
    expect(inputOf(testCase, { bucket: 'bucket', prefix: 'bad-input/00000000' }).length).toBeGreaterThan(0);
  }
});
