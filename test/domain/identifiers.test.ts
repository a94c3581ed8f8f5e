import { imageRef, printable, printableJson } from '../../src/domain/identifiers';

test('an image is named by a short hash of where it is: the same for the same place, nothing of the key readable', () => {
  const ref = imageRef('photos', 'people/ana-garcia.jpg');

  expect(ref).toMatch(/^image [0-9a-f]{12}$/);
  expect(imageRef('photos', 'people/ana-garcia.jpg')).toBe(ref);
  expect(imageRef('photos', 'people/bo.jpg')).not.toBe(ref);
  expect(ref).not.toContain('ana');
});

test('control characters and bidirectional overrides print as escapes; the rest as it is', () => {
  expect(printable('people/\u001b[2Jcleared.jpg')).toBe('people/\\u001b[2Jcleared.jpg');
  expect(printable('a\u009bb\u007fc\u202ed')).toBe('a\\u009bb\\u007fc\\u202ed');
  expect(printable('Zoë/José ✓.jpg\ttab')).toBe('Zoë/José ✓.jpg\\u0009tab');
});

test('JSON for a terminal escapes what JSON leaves raw, and reads back the same', () => {
  const message = { Key: 'people/\u001b[2Jana\u202egpj.exe', detail: 'refused \u009b2J', lines: 'one\ntwo' };
  const text = printableJson(message);

  for (const raw of ['\u001b', '\u009b', '\u202e']) expect(text).not.toContain(raw);
  expect(JSON.parse(text)).toEqual(message);
});
