/**
 * Reading a mapping file (CSV: a key column of FaceId, ImageId or ExternalImageId, a column of
 * s3:// URIs, and an optional UserId column) row by row, for `prepare` and for a sync's added
 * faces. A file without the columns it needs fails at its header, before any face is listed.
 */
import type { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import {
  type FaceKey,
  type MappingEntry,
  mappingColumns,
  mappingEntry,
  PlacementError,
} from '../domain/image-locations';

export interface Mapping {
  key: FaceKey;
  entries: AsyncGenerator<MappingEntry>;
}

/**
 * Opens the mapping's rows and reads its header. Problems of the file's contents are
 * PlacementErrors; `unreadable` says what became of an error reading it.
 */
export async function readMapping(
  input: Readable,
  chosenKey: FaceKey | undefined,
  { name, unreadable }: { name: string; unreadable: (error: unknown) => Error },
): Promise<Mapping> {
  const rows = input.pipe(parse({ bom: true, skip_empty_lines: true }));
  input.on('error', (error) => rows.destroy(error));
  const iterator = rows[Symbol.asyncIterator]() as AsyncIterator<string[]>;
  const failed = (error: unknown) => (error instanceof PlacementError ? error : unreadable(error));
  const close = async () => {
    await iterator.return?.();
    input.destroy();
  };
  try {
    const header = await iterator.next();
    if (header.done) throw new PlacementError(`the mapping file ${name} is empty`);
    const first = await iterator.next();
    const columns = mappingColumns(header.value, first.done ? undefined : first.value, chosenKey);
    async function* entries(): AsyncGenerator<MappingEntry> {
      try {
        let line = 2;
        for (let row = first; !row.done; row = await iterator.next(), line += 1)
          yield mappingEntry(columns, row.value, line);
      } catch (error) {
        throw failed(error);
      } finally {
        await close();
      }
    }
    return { key: columns.key, entries: entries() };
  } catch (error) {
    await close();
    throw failed(error);
  }
}
