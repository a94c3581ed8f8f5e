/**
 * Sending to SQS outside an activity, as `reindex dlq requeue-results` does: the messages SQS fails
 * on its side are sent again, told on stderr, not lost to a missing activity context.
 */
import type { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { sendMessages } from '../../src/aws/sqs';

test('outside an activity, messages SQS failed on its side are sent again and the resend is told on stderr', async () => {
  const sent: string[][] = [];
  // One function's unit test: a client that fails the first message of its first batch, as SQS may.
  const sqs = {
    send: (command: SendMessageBatchCommand) => {
      const entries = command.input.Entries ?? [];
      sent.push(entries.map((entry) => entry.MessageBody ?? ''));
      const Failed = sent.length === 1 ? [{ Id: entries[0]?.Id, SenderFault: false, Code: 'InternalError' }] : [];
      return Promise.resolve({ Failed });
    },
  } as unknown as SQSClient;
  const told = jest.spyOn(console, 'error').mockImplementation(() => undefined);

  try {
    await sendMessages(sqs, 'https://sqs.example/queue', [{ MessageBody: 'a' }, { MessageBody: 'b' }]);

    expect(sent).toEqual([['a', 'b'], ['a']]);
    expect(told.mock.calls.map(([line]) => line as string)).toEqual([
      'reindex: SQS failed some messages of a batch; sending them again ({"queueUrl":"https://sqs.example/queue","failed":1,"attempt":1})',
    ]);
  } finally {
    told.mockRestore();
  }
});
