import { parse } from 'csv-parse/sync';
import { csvLine, csvText } from '../../src/domain/csv';

test('a cell a spreadsheet would run as a formula is written with a leading quote', () => {
  const line = csvLine(['=HYPERLINK("http://x","y")', '+1', '-1+2', '@SUM(A1)', '\tpadded', 'plain', -3, 0.97]);

  expect(parse(line)).toEqual([
    ['\'=HYPERLINK("http://x","y")', "'+1", "'-1+2", "'@SUM(A1)", "'\tpadded", 'plain', '-3', '0.97'],
  ]);
});

test('rows keep their order and commas, quotes and line ends survive', () => {
  const rows = [
    ['figure', 'value'],
    ['a, b', 'say "hi"'],
    ['two\nlines', 7],
  ];

  expect(parse(csvText(rows))).toEqual([
    ['figure', 'value'],
    ['a, b', 'say "hi"'],
    ['two\nlines', '7'],
  ]);
});
