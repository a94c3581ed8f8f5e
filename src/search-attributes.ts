/**
 * The project's search attributes in a namespace: which are missing, and registering them. A run
 * or plan that sets one the namespace lacks has its every workflow task refused, so `start` and
 * `check` look first, and the local stack registers them on every start (also into a dev server
 * database made before one of them existed).
 */
import type { ConnectionLike } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from './shared';

const INDEXED_VALUE_TYPES: Record<SearchAttributeType, temporal.api.enums.v1.IndexedValueType> = {
  [SearchAttributeType.TEXT]: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  [SearchAttributeType.KEYWORD]: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  [SearchAttributeType.INT]: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT,
  [SearchAttributeType.DOUBLE]: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  [SearchAttributeType.BOOL]: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  [SearchAttributeType.DATETIME]: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  [SearchAttributeType.KEYWORD_LIST]: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

/** Each type as the `temporal` CLI names it (`--type Keyword`). */
export const CLI_SEARCH_ATTRIBUTE_TYPES: Record<SearchAttributeType, string> = {
  [SearchAttributeType.TEXT]: 'Text',
  [SearchAttributeType.KEYWORD]: 'Keyword',
  [SearchAttributeType.INT]: 'Int',
  [SearchAttributeType.DOUBLE]: 'Double',
  [SearchAttributeType.BOOL]: 'Bool',
  [SearchAttributeType.DATETIME]: 'Datetime',
  [SearchAttributeType.KEYWORD_LIST]: 'KeywordList',
};

/** The project's search attributes `namespace` does not have. */
export async function missingSearchAttributes(
  connection: Pick<ConnectionLike, 'operatorService'>,
  namespace: string,
): Promise<(typeof SEARCH_ATTRIBUTES)[keyof typeof SEARCH_ATTRIBUTES][]> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  return Object.values(SEARCH_ATTRIBUTES).filter((key) => !(key.name in (customAttributes ?? {})));
}

/** The attributes by name, with the type the operator service registers each as. */
export function indexedTypes(
  keys: readonly (typeof SEARCH_ATTRIBUTES)[keyof typeof SEARCH_ATTRIBUTES][],
): Record<string, temporal.api.enums.v1.IndexedValueType> {
  return Object.fromEntries(keys.map((key) => [key.name, INDEXED_VALUE_TYPES[key.type]]));
}

/** Registers the project's search attributes `namespace` lacks; those it has stay as they are. */
export async function registerSearchAttributes(
  connection: Pick<ConnectionLike, 'operatorService'>,
  namespace: string,
): Promise<void> {
  const missing = await missingSearchAttributes(connection, namespace);
  if (missing.length === 0) return;
  await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: indexedTypes(missing) });
}
