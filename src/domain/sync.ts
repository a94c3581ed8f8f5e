/**
 * What a sync must change in a migrated collection to bring it in step with its old collection,
 * worked out from the target's rows and a listing of the old collection. Pure: the caller reads
 * the rows, then lists the old faces; this answers with the faces to delete, the faces whose user
 * changed and the faces to migrate.
 */
import type { ListedFace } from './image-locations';

/** A row of the results table, as far as a sync reads it. */
export interface SyncRow {
  OldFaceId: string;
  FaceId: string;
  UserId?: string;
  /** Set once a sync deleted the row's new face, its old face having gone. */
  DeletedAt?: string;
}

/** A face deleted from the old collection whose new face is still in the target. */
export interface SyncDeletion {
  OldFaceId: string;
  FaceId: string;
  UserId: string | undefined;
}

/** A migrated face whose old face now belongs to another user, or to none. */
export interface SyncUserChange {
  OldFaceId: string;
  FaceId: string;
  from: string | undefined;
  to: string | undefined;
}

export interface SyncChanges {
  deletions: SyncDeletion[];
  userChanges: SyncUserChange[];
  /** Old faces with no row: added to the old collection since its migration, or not migrated yet. */
  additions: ListedFace[];
}

interface RowEntry {
  FaceId: string;
  UserId: string | undefined;
  seen: boolean;
}

/** Collects the rows first, then the old faces, and says what differs. */
export class SyncPlanner {
  private readonly rows = new Map<string, RowEntry>();
  private readonly userChanges: SyncUserChange[] = [];
  private readonly additions: ListedFace[] = [];
  private listing = false;

  /** A row of the target; rows already marked deleted are history, not faces. */
  addRow(row: SyncRow): void {
    if (this.listing) throw new Error('every row comes before the first old face');
    if (row.DeletedAt !== undefined) return;
    this.rows.set(row.OldFaceId, { FaceId: row.FaceId, UserId: row.UserId, seen: false });
  }

  /** A face of the old collection. */
  addOldFace(face: ListedFace): void {
    this.listing = true;
    const row = this.rows.get(face.FaceId);
    if (row === undefined) {
      this.additions.push(face);
      return;
    }
    row.seen = true;
    if (row.UserId !== face.UserId)
      this.userChanges.push({ OldFaceId: face.FaceId, FaceId: row.FaceId, from: row.UserId, to: face.UserId });
  }

  changes(): SyncChanges {
    const deletions: SyncDeletion[] = [];
    for (const [OldFaceId, row] of this.rows)
      if (!row.seen) deletions.push({ OldFaceId, FaceId: row.FaceId, UserId: row.UserId });
    return { deletions, userChanges: this.userChanges, additions: this.additions };
  }
}
