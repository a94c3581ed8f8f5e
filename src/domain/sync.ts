/**
 * What a sync must change in a migrated collection to bring it in step with its old collection,
 * worked out from the target's rows and a listing of the old collection. Pure: the caller reads
 * the rows, then lists the old faces; this answers with the faces to delete, the faces whose user
 * changed and the faces to migrate.
 */
import { packedFaceId, unpackedFaceId } from './cutover';
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
  /** How many there are, kept or not. */
  additionsFound: number;
}

/**
 * A sync holds every row of the target while it lists the old collection, so a row costs little:
 * both FaceIds packed to 16 bytes, and its user as a number (its place in the list of users).
 */
export class SyncPlanner {
  /** Each row's place in the arrays below, by its packed old FaceId. */
  private readonly rowOf = new Map<string, number>();
  private readonly newFaces: string[] = [];
  /** The row's user's number; 0 for none. */
  private readonly rowUsers: number[] = [];
  private readonly seen: boolean[] = [];
  private readonly userNumbers = new Map<string, number>();
  private readonly userIds: (string | undefined)[] = [undefined];
  private readonly userChanges: SyncUserChange[] = [];
  private readonly additions: ListedFace[] = [];
  private additionsFound = 0;
  private listing = false;

  /** `keepAdditions` false: the old faces without a row are counted only, as while a run still migrates them. */
  constructor(private readonly keepAdditions = true) {}

  private userNumber(userId: string | undefined): number {
    if (userId === undefined) return 0;
    let number = this.userNumbers.get(userId);
    if (number === undefined) {
      number = this.userIds.length;
      this.userIds.push(userId);
      this.userNumbers.set(userId, number);
    }
    return number;
  }

  /** A row of the target; rows already marked deleted are history, not faces. */
  addRow(row: SyncRow): void {
    if (this.listing) throw new Error('every row comes before the first old face');
    if (row.DeletedAt !== undefined) return;
    this.rowOf.set(packedFaceId(row.OldFaceId), this.newFaces.length);
    this.newFaces.push(packedFaceId(row.FaceId));
    this.rowUsers.push(this.userNumber(row.UserId));
    this.seen.push(false);
  }

  /** A face of the old collection. */
  addOldFace(face: ListedFace): void {
    this.listing = true;
    const index = this.rowOf.get(packedFaceId(face.FaceId));
    if (index === undefined) {
      this.additionsFound += 1;
      if (this.keepAdditions) this.additions.push(face);
      return;
    }
    this.seen[index] = true;
    const from = this.userIds[this.rowUsers[index] ?? 0];
    if (from !== face.UserId)
      this.userChanges.push({
        OldFaceId: face.FaceId,
        FaceId: unpackedFaceId(this.newFaces[index] ?? ''),
        from,
        to: face.UserId,
      });
  }

  changes(): SyncChanges {
    const deletions: SyncDeletion[] = [];
    for (const [oldKey, index] of this.rowOf)
      if (!this.seen[index])
        deletions.push({
          OldFaceId: unpackedFaceId(oldKey),
          FaceId: unpackedFaceId(this.newFaces[index] ?? ''),
          UserId: this.userIds[this.rowUsers[index] ?? 0],
        });
    return {
      deletions,
      userChanges: this.userChanges,
      additions: this.additions,
      additionsFound: this.additionsFound,
    };
  }
}
