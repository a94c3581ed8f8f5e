import { addReasonCounts, ReasonCode, type ReasonCounts } from '../../src/domain/reasons';

test('a reason is counted once, and a tally is merged reason by reason', () => {
  const counts: ReasonCounts = { [ReasonCode.InvalidRecord]: 2 };

  addReasonCounts(counts, ReasonCode.InvalidRecord);
  addReasonCounts(counts, { [ReasonCode.ImageNotFound]: 3, [ReasonCode.InvalidRecord]: 1 });

  expect(counts).toEqual({ [ReasonCode.InvalidRecord]: 4, [ReasonCode.ImageNotFound]: 3 });
});
