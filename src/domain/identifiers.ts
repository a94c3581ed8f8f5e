/**
 * Identifiers where they must not be whole. An image's key often carries a person's name, and logs
 * keep what they are given: a log names an image by a short hash of its location, which the DLQ
 * message of that image (which holds the key) shows too. And text from keys or DLQ messages is
 * printed with its control characters escaped, so a crafted key cannot rewrite the terminal.
 */
import { createHash } from 'node:crypto';

/** `image 3fa2c1d9e0b4`: the same for the same bucket and key, and nothing of either readable. */
export function imageRef(bucket: string, key: string): string {
  return `image ${createHash('sha256').update(`s3://${bucket}/${key}`).digest('hex').slice(0, 12)}`;
}

/**
 * C0 and C1 controls, DEL, and the bidirectional overrides that reorder what a reader sees: matching them is the point.
 */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** `text` with every control character written as its \u escape. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Past C0 controls, which JSON escapes itself. */
const UNPRINTABLE_IN_JSON = /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** `value` as indented JSON a terminal may print: what JSON leaves raw is escaped too, and it still parses. */
export function printableJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    UNPRINTABLE_IN_JSON,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
