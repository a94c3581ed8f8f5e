/**
 * Search parity between the old and the new collection: for a migrated face, do a search in each
 * collection find the same people? A face's person is its UserId, or else the ExternalImageId of
 * the image it came from, which is how an application tells who a match is.
 */

/** The face's fields that say who it is, as ListFaces and SearchFaces return them. */
export interface NamedFace {
  UserId?: string | undefined;
  ExternalImageId?: string | undefined;
}

/** Who a face is: `user:<UserId>`, else `image:<ExternalImageId>`, else `unnamed`. */
export function identityOf(face: NamedFace): string {
  if (face.UserId) return `user:${face.UserId}`;
  if (face.ExternalImageId) return `image:${face.ExternalImageId}`;
  return 'unnamed';
}

/**
 * What a search for one face found in one collection: who the face itself is, and everyone found,
 * the face included; `missing` when the face is not in the collection.
 */
export type SearchFinding = { missing: false; self: string; identities: string[] } | { missing: true };

export interface FaceComparison {
  OldFaceId: string;
  FaceId: string;
  old: SearchFinding;
  new: SearchFinding;
  /** Both faces are there and both searches found exactly the same identities. */
  agree: boolean;
  /** Both faces are there and are the same person: when false, the row maps a face to someone else. */
  samePerson: boolean;
}

export function compareFindings(
  OldFaceId: string,
  FaceId: string,
  old: SearchFinding,
  found: SearchFinding,
): FaceComparison {
  if (old.missing || found.missing) return { OldFaceId, FaceId, old, new: found, agree: false, samePerson: false };
  const agree =
    old.identities.length === found.identities.length &&
    old.identities.every((identity) => found.identities.includes(identity));
  return { OldFaceId, FaceId, old, new: found, agree, samePerson: old.self === found.self };
}

/** The distinct identities of a set of faces, sorted: the same people give the same list. */
export function identitiesOf(faces: NamedFace[]): string[] {
  return [...new Set(faces.map(identityOf))].sort();
}

export interface Parity {
  compared: number;
  agreeing: number;
  /** agreeing / compared, 0 to 1; 1 when nothing was compared. */
  share: number;
  /** Rows whose faces are not the same person, or not there: broken mappings rather than model drift. */
  notSamePerson: number;
}

export function parityOf(comparisons: FaceComparison[]): Parity {
  const agreeing = comparisons.filter((comparison) => comparison.agree).length;
  return {
    compared: comparisons.length,
    agreeing,
    share: comparisons.length > 0 ? agreeing / comparisons.length : 1,
    notSamePerson: comparisons.filter((comparison) => !comparison.samePerson).length,
  };
}
