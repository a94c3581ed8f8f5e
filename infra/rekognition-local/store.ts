/**
 * Collections, faces, users and idempotency tokens, kept in memory and made durable by a journal:
 * every change is one appended JSON line, numbered, applied to memory only after it is written.
 * Now and then the whole state goes to a snapshot (written to a temporary file, then renamed, so
 * it is never torn) and the journal starts again. Loading reads the snapshot, then replays the
 * journal lines numbered after it; a last line torn by a crash was never acknowledged and is dropped.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface BoundingBox {
  Width: number;
  Height: number;
  Left: number;
  Top: number;
}

export interface StoredFace {
  FaceId: string;
  ImageId: string;
  ExternalImageId?: string;
  BoundingBox: BoundingBox;
  Confidence: number;
  IndexFacesModelVersion: string;
  UserId?: string;
  /** What identifies the person for search: a face descriptor. */
  descriptor: number[];
}

export interface StoredUser {
  UserId: string;
  faceIds: string[];
}

export interface StoredCollection {
  CollectionId: string;
  CollectionArn: string;
  FaceModelVersion: string;
  CreationTimestamp: number;
  /** Absent in snapshots written before collections kept tags. */
  Tags?: Record<string, string>;
  faces: Record<string, StoredFace>;
  users: Record<string, StoredUser>;
}

export interface StoredToken {
  /** The request's parameters, canonicalised, to detect a token reused with other parameters. */
  request: string;
  response: unknown;
}

interface State {
  collections: Record<string, StoredCollection>;
  tokens: Record<string, StoredToken>;
}

export type Change =
  | { kind: 'createCollection'; collection: Omit<StoredCollection, 'faces' | 'users'> }
  | { kind: 'deleteCollection'; collectionId: string }
  | { kind: 'tagCollection'; collectionId: string; tags: Record<string, string> }
  | { kind: 'untagCollection'; collectionId: string; keys: string[] }
  | { kind: 'putFaces'; collectionId: string; faces: StoredFace[] }
  | { kind: 'deleteFaces'; collectionId: string; faceIds: string[] }
  | { kind: 'putUser'; collectionId: string; userId: string }
  | { kind: 'deleteUser'; collectionId: string; userId: string }
  | { kind: 'associate'; collectionId: string; userId: string; faceIds: string[] }
  | { kind: 'disassociate'; collectionId: string; userId: string; faceIds: string[] }
  | { kind: 'putToken'; key: string; token: StoredToken }
  | { kind: 'reset' };

const SNAPSHOT_EVERY = 50_000;

const imageIndexKey = (collectionId: string, face: { ImageId: string }) => `${collectionId}|${face.ImageId}`;

function emptyState(): State {
  return { collections: {}, tokens: {} };
}

function applyChange(state: State, change: Change): void {
  const collection = 'collectionId' in change ? state.collections[change.collectionId] : undefined;
  switch (change.kind) {
    case 'createCollection':
      state.collections[change.collection.CollectionId] = { ...change.collection, faces: {}, users: {} };
      return;
    case 'deleteCollection':
      delete state.collections[change.collectionId];
      return;
    case 'tagCollection':
      collection!.Tags = { ...collection!.Tags, ...change.tags };
      return;
    case 'untagCollection':
      collection!.Tags = Object.fromEntries(
        Object.entries(collection!.Tags ?? {}).filter(([key]) => !change.keys.includes(key)),
      );
      return;
    case 'putFaces':
      for (const face of change.faces) collection!.faces[face.FaceId] = face;
      return;
    case 'deleteFaces':
      for (const faceId of change.faceIds) {
        const userId = collection!.faces[faceId]?.UserId;
        const user = userId === undefined ? undefined : collection!.users[userId];
        if (user) user.faceIds = user.faceIds.filter((id) => id !== faceId);
        delete collection!.faces[faceId];
      }
      return;
    case 'putUser':
      collection!.users[change.userId] = { UserId: change.userId, faceIds: [] };
      return;
    case 'deleteUser':
      for (const faceId of collection!.users[change.userId]?.faceIds ?? []) {
        const face = collection!.faces[faceId];
        if (face) delete face.UserId;
      }
      delete collection!.users[change.userId];
      return;
    case 'associate': {
      const user = collection!.users[change.userId]!;
      for (const faceId of change.faceIds) {
        collection!.faces[faceId]!.UserId = change.userId;
        if (!user.faceIds.includes(faceId)) user.faceIds.push(faceId);
      }
      return;
    }
    case 'disassociate': {
      const user = collection!.users[change.userId]!;
      for (const faceId of change.faceIds) {
        const face = collection!.faces[faceId];
        if (face) delete face.UserId;
      }
      user.faceIds = user.faceIds.filter((id) => !change.faceIds.includes(id));
      return;
    }
    case 'putToken':
      state.tokens[change.key] = change.token;
      return;
    case 'reset':
      state.collections = {};
      state.tokens = {};
      return;
  }
}

export class Store {
  private state: State = emptyState();
  /** Derived from the state, never stored: faces by collection and ImageId, for IndexFaces' lookups. */
  private byImage = new Map<string, Set<string>>();
  private faceCounts = new Map<string, number>();
  private sequence = 0;
  private changesSinceSnapshot = 0;
  private readonly snapshotFile: string;
  private readonly journalFile: string;

  /** `directory` undefined keeps everything in memory only. */
  constructor(private readonly directory: string | undefined) {
    this.snapshotFile = path.join(directory ?? '', 'snapshot.json');
    this.journalFile = path.join(directory ?? '', 'journal.jsonl');
    if (directory !== undefined) this.load(directory);
  }

  collection(collectionId: string): StoredCollection | undefined {
    return this.state.collections[collectionId];
  }

  collections(): StoredCollection[] {
    return Object.values(this.state.collections);
  }

  /** The faces of the collection indexed from the image with this ImageId. */
  facesOfImage(collectionId: string, imageId: string): StoredFace[] {
    const collection = this.state.collections[collectionId];
    const ids = this.byImage.get(imageIndexKey(collectionId, { ImageId: imageId })) ?? [];
    return [...ids].flatMap((id) => collection?.faces[id] ?? []);
  }

  faceCount(collectionId: string): number {
    return this.faceCounts.get(collectionId) ?? 0;
  }

  token(key: string): StoredToken | undefined {
    return this.state.tokens[key];
  }

  /** Makes a change durable, then applies it. */
  commit(change: Change): void {
    this.sequence += 1;
    if (this.directory !== undefined) {
      appendFileSync(this.journalFile, `${JSON.stringify({ sequence: this.sequence, change })}\n`);
    }
    this.indexBeforeApplying(change);
    applyChange(this.state, change);
    this.changesSinceSnapshot += 1;
    if (this.changesSinceSnapshot >= SNAPSHOT_EVERY) this.snapshot();
  }

  private addToImageIndex(collectionId: string, face: StoredFace): void {
    const key = imageIndexKey(collectionId, face);
    this.byImage.set(key, (this.byImage.get(key) ?? new Set()).add(face.FaceId));
  }

  private indexBeforeApplying(change: Change): void {
    switch (change.kind) {
      case 'putFaces': {
        const faces = this.state.collections[change.collectionId]?.faces ?? {};
        const added = change.faces.filter((face) => faces[face.FaceId] === undefined).length;
        this.faceCounts.set(change.collectionId, this.faceCount(change.collectionId) + added);
        for (const face of change.faces) this.addToImageIndex(change.collectionId, face);
        return;
      }
      case 'deleteFaces': {
        const collection = this.state.collections[change.collectionId];
        for (const faceId of change.faceIds) {
          const face = collection?.faces[faceId];
          if (!face) continue;
          this.byImage.get(imageIndexKey(change.collectionId, face))?.delete(faceId);
          this.faceCounts.set(change.collectionId, this.faceCount(change.collectionId) - 1);
        }
        return;
      }
      case 'deleteCollection':
        for (const face of Object.values(this.state.collections[change.collectionId]?.faces ?? {})) {
          this.byImage.delete(imageIndexKey(change.collectionId, face));
        }
        this.faceCounts.delete(change.collectionId);
        return;
      case 'reset':
        this.byImage.clear();
        this.faceCounts.clear();
        return;
      default:
        return;
    }
  }

  private rebuildIndex(): void {
    this.byImage.clear();
    this.faceCounts.clear();
    for (const collection of Object.values(this.state.collections)) {
      const faces = Object.values(collection.faces);
      this.faceCounts.set(collection.CollectionId, faces.length);
      for (const face of faces) this.addToImageIndex(collection.CollectionId, face);
    }
  }

  /** Writes the whole state atomically and starts an empty journal. */
  snapshot(): void {
    if (this.directory === undefined) return;
    const temporary = `${this.snapshotFile}.tmp`;
    writeFileSync(temporary, JSON.stringify({ sequence: this.sequence, state: this.state }));
    renameSync(temporary, this.snapshotFile);
    // A crash between the rename and this truncation is harmless: replay skips what the snapshot holds.
    writeFileSync(this.journalFile, '');
    this.changesSinceSnapshot = 0;
  }

  private load(directory: string): void {
    mkdirSync(directory, { recursive: true });
    if (existsSync(this.snapshotFile)) {
      const snapshot = JSON.parse(readFileSync(this.snapshotFile, 'utf8')) as { sequence: number; state: State };
      this.state = snapshot.state;
      this.sequence = snapshot.sequence;
    }
    if (existsSync(this.journalFile)) this.replay();
    this.rebuildIndex();
    // Starting from a fresh snapshot means nothing is ever appended after a torn line.
    this.snapshot();
  }

  private replay(): void {
    for (const line of readFileSync(this.journalFile, 'utf8').split('\n')) {
      if (line === '') continue;
      let entry: { sequence: number; change: Change };
      try {
        entry = JSON.parse(line) as { sequence: number; change: Change };
      } catch {
        break;
      }
      if (entry.sequence <= this.sequence) continue;
      applyChange(this.state, entry.change);
      this.sequence = entry.sequence;
      this.changesSinceSnapshot += 1;
    }
  }
}
