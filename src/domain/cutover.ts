/**
 * Whether an old collection and its migrated collection agree, face for face and user for user,
 * through the results table's rows (old FaceId → new FaceId). Pure: the caller lists the faces and
 * reads the rows; this keeps one entry per face, and as many examples of each difference as asked.
 */

export interface CollectionFace {
  faceId: string;
  userId: string | undefined;
}

export interface MigrationRow {
  oldFaceId: string;
  newFaceId: string;
}

/** How many there are of one kind of difference, and the first `examples` of them. */
export interface Differences<T> {
  count: number;
  examples: T[];
}

export interface UserDifference {
  userId: string;
  /** New faces whose old faces belong to the user, and which do not. */
  missing: number;
  /** New faces that belong to the user, and whose old faces do not (or that have no row). */
  extra: number;
}

export interface CutoverFindings {
  oldFaces: number;
  newFaces: number;
  rows: number;
  /** Old faces no row maps: not migrated (yet), or added to the old collection since. */
  oldFacesWithoutRow: Differences<string>;
  /** Rows whose old face is gone from the old collection: deleted there since. */
  rowsWithOldFaceGone: Differences<MigrationRow>;
  /** Rows whose new face is not in the new collection. */
  rowsWithNewFaceGone: Differences<MigrationRow>;
  /** New faces no row maps to. */
  newFacesWithoutRow: Differences<string>;
  /** Users whose new members are not the new faces of their old members. */
  usersDiffering: Differences<UserDifference>;
}

/** Whether nothing differs: the new collection can take the old one's place. */
export function inStep(findings: CutoverFindings): boolean {
  return (
    findings.oldFacesWithoutRow.count +
      findings.rowsWithOldFaceGone.count +
      findings.rowsWithNewFaceGone.count +
      findings.newFacesWithoutRow.count +
      findings.usersDiffering.count ===
    0
  );
}

/** Counts one kind of difference and keeps its first examples. */
class Collected<T> {
  private count = 0;
  private readonly examples: T[] = [];

  constructor(private readonly limit: number) {}

  add(item: T): void {
    this.count += 1;
    if (this.examples.length < this.limit) this.examples.push(item);
  }

  result(): Differences<T> {
    return { count: this.count, examples: this.examples };
  }
}

/**
 * The comparison holds every face of both collections at once, so a face costs little: its FaceId
 * as 16 bytes when it is a UUID (as the service's are), and its user and whether a row names it as
 * one small number.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A packed UUID's length, which no FaceId kept as it is has. */
const PACKED_LENGTH = 16;
/**
 * Starts every FaceId kept as it is, once more when that would make it as long as a packed one. A
 * packed key is told by its length alone: its first byte may be this character too.
 */
const UNPACKED = '\u0000';

export function packedFaceId(faceId: string): string {
  if (UUID.test(faceId)) return Buffer.from(faceId.replaceAll('-', ''), 'hex').toString('latin1');
  const kept = UNPACKED + faceId;
  return kept.length === PACKED_LENGTH ? UNPACKED + kept : kept;
}

export function unpackedFaceId(key: string): string {
  if (key.length !== PACKED_LENGTH) {
    const kept = key.slice(UNPACKED.length);
    return kept.length === PACKED_LENGTH && kept.startsWith(UNPACKED) ? kept.slice(UNPACKED.length) : kept;
  }
  const hex = Buffer.from(key, 'latin1').toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A face's entry: its user's number times two, plus one once a row names the face. */
const NAMED_BY_ROW = 1;
const userOf = (entry: number) => entry >> 1;
/** User number 0: no user. */
const NO_USER = 0;

type UserCounts = Map<number, { missing: number; extra: number }>;

function countUser(userCounts: UserCounts, user: number, kind: 'missing' | 'extra'): void {
  if (user === NO_USER) return;
  const counts = userCounts.get(user) ?? { missing: 0, extra: 0 };
  counts[kind] += 1;
  userCounts.set(user, counts);
}

/**
 * Compares the collections through the rows: every face of both collections first, then the rows
 * one by one, then the findings. A user differs when one of its old members has no row or a new
 * face outside the user, or one of its new members has no row or an old face outside the user;
 * faces whose row is broken count there too, since the user then lacks them.
 */
export class CutoverComparison {
  private readonly userNumbers = new Map<string, number>();
  private readonly userIds: (string | undefined)[] = [undefined];
  private readonly oldFaces = new Map<string, number>();
  private readonly newFaces = new Map<string, number>();
  private readonly userCounts: UserCounts = new Map();
  private readonly rowsWithOldFaceGone: Collected<MigrationRow>;
  private readonly rowsWithNewFaceGone: Collected<MigrationRow>;
  private rows = 0;

  constructor(private readonly examples: number) {
    this.rowsWithOldFaceGone = new Collected(examples);
    this.rowsWithNewFaceGone = new Collected(examples);
  }

  oldFace(face: CollectionFace): void {
    this.oldFaces.set(packedFaceId(face.faceId), this.userNumber(face.userId) * 2);
  }

  newFace(face: CollectionFace): void {
    this.newFaces.set(packedFaceId(face.faceId), this.userNumber(face.userId) * 2);
  }

  /** A row of the target; rows come after every face. */
  row(row: MigrationRow): void {
    this.rows += 1;
    const oldKey = packedFaceId(row.oldFaceId);
    const newKey = packedFaceId(row.newFaceId);
    const oldEntry = this.oldFaces.get(oldKey);
    const newEntry = this.newFaces.get(newKey);
    if (oldEntry === undefined) this.rowsWithOldFaceGone.add(row);
    else this.oldFaces.set(oldKey, oldEntry | NAMED_BY_ROW);
    if (newEntry === undefined) this.rowsWithNewFaceGone.add(row);
    else this.newFaces.set(newKey, newEntry | NAMED_BY_ROW);
    const oldUser = oldEntry === undefined ? undefined : userOf(oldEntry);
    const newUser = newEntry === undefined ? undefined : userOf(newEntry);
    if (oldUser !== undefined && oldUser === newUser) return;
    // The old user lacks this face in the new collection; the new user has it without cause.
    if (oldUser !== undefined) countUser(this.userCounts, oldUser, 'missing');
    if (newUser !== undefined) countUser(this.userCounts, newUser, 'extra');
  }

  findings(): CutoverFindings {
    // The rows' counts stay as they are: findings may be asked for again.
    const userCounts = new Map([...this.userCounts].map(([user, counts]) => [user, { ...counts }]));
    const oldFacesWithoutRow = new Collected<string>(this.examples);
    for (const [key, entry] of this.oldFaces) {
      if (entry & NAMED_BY_ROW) continue;
      oldFacesWithoutRow.add(unpackedFaceId(key));
      countUser(userCounts, userOf(entry), 'missing');
    }
    const newFacesWithoutRow = new Collected<string>(this.examples);
    for (const [key, entry] of this.newFaces) {
      if (entry & NAMED_BY_ROW) continue;
      newFacesWithoutRow.add(unpackedFaceId(key));
      countUser(userCounts, userOf(entry), 'extra');
    }
    const usersDiffering = new Collected<UserDifference>(this.examples);
    const differing = [...userCounts].map(([user, counts]) => ({ userId: this.userIds[user] ?? '', ...counts }));
    for (const user of differing.sort((a, b) => a.userId.localeCompare(b.userId))) usersDiffering.add(user);
    return {
      oldFaces: this.oldFaces.size,
      newFaces: this.newFaces.size,
      rows: this.rows,
      oldFacesWithoutRow: oldFacesWithoutRow.result(),
      rowsWithOldFaceGone: this.rowsWithOldFaceGone.result(),
      rowsWithNewFaceGone: this.rowsWithNewFaceGone.result(),
      newFacesWithoutRow: newFacesWithoutRow.result(),
      usersDiffering: usersDiffering.result(),
    };
  }

  private userNumber(userId: string | undefined): number {
    if (userId === undefined) return NO_USER;
    let user = this.userNumbers.get(userId);
    if (user === undefined) {
      user = this.userIds.length;
      this.userIds.push(userId);
      this.userNumbers.set(userId, user);
    }
    return user;
  }
}
