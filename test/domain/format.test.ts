import { count, percent } from '../../src/domain/format';

test('counts are whole numbers with thousands separators', () => {
  expect(count(1234567)).toBe('1,234,567');
  expect(count(2.6)).toBe('3');
});

test('a share has one decimal, and a style for no whole and for all of it', () => {
  expect(percent(1, 3)).toBe('33.3%');
  expect(percent(4, 4)).toBe('100.0%');
  expect(percent(0, 0)).toBe('0.0%');
  expect(percent(4, 4, { none: '–', roundWhole: true })).toBe('100%');
  expect(percent(0, 0, { none: '–', roundWhole: true })).toBe('–');
  expect(percent(1, 3, { none: '–', roundWhole: true })).toBe('33.3%');
});
