/** Collection names as Rekognition takes them, for checks that must not pull in the records schema. */
export const COLLECTION_ID = /^[a-zA-Z0-9_.-]+$/;

/** Whether Rekognition takes `value` as a CollectionId: letters, digits and `_ . -`, at most 255. */
export function isCollectionId(value: string): boolean {
  return value.length <= 255 && COLLECTION_ID.test(value);
}
